-- Refreshes a worker's subscriptions to one client channel, only those still recorded and live: a socket whose entry
-- is gone (it left, and occupancy_remove.lua may have announced the channel vacated) or lapsed is not written back but
-- reported, so a refresh that raced a leave never brings the socket back (nor the channel). The worker touches again,
-- with occupancy_touch.lua, the ones it still holds.
-- KEYS[1] pusher:channel:{<bucket tag>}:<channel>:sockets   KEYS[2] pusher:channels:{<bucket tag>} (same slot)
-- ARGV[1] ttl (ms)   ARGV[2] channel   ARGV[3..] socket ids
-- Returns per socket in ARGV[3..]: 1 refreshed, 0 missing or lapsed (nothing written for it).
--#include clock
local now = redis_now()
local ttl = tonumber(ARGV[1])
local out, refreshed = {}, false
for i = 3, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) > now then
    redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
    out[#out + 1] = 1
    refreshed = true
  else
    out[#out + 1] = 0
  end
end
if refreshed then
  redis.call('PEXPIRE', KEYS[1], ttl * 2 + 60000)
  -- The live-channel index: lapsed entries are left for the settle pass (occupancy_settle.lua), never pruned here.
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ttl * 2)
end
return out
