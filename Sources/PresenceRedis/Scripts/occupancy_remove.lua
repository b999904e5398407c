-- Forgets one socket's subscription to a client channel, and announces the channel vacated when no live subscriber is
-- left, writing the webhook event to each receiver's outbox in the same step.
-- KEYS[1] pusher:channel:{<bucket tag>}:<channel>:sockets   KEYS[2..] outbox stream and byte count per receiver
-- (see occupancy_touch.lua)
-- ARGV[1] socket   ARGV[2] the webhook event channel_vacated ('' for an internal channel: see occupancy_touch.lua)
-- ARGV[3] outbox bound (entries)   ARGV[4] outbox bound (bytes)
-- ARGV[5] largest event (bytes)   ARGV[6..] per receiver: 'o' and/or 'v'
-- Returns 1 when this call emptied the set (vacated), else 0.
--#include clock
--#include outbox
local now = redis_now()
local total = redis.call('ZCARD', KEYS[1])
if total == 0 then return 0 end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local lapsed = redis.call('ZCOUNT', KEYS[1], '-inf', now)
local live = total - lapsed
if score and tonumber(score) > now then live = live - 1 end
if live == 0 then
  redis.call('DEL', KEYS[1])
  outbox_announce(ARGV[2], 'v', 3)
  return 1
end
if score then redis.call('ZREM', KEYS[1], ARGV[1]) end
if lapsed > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
return 0
