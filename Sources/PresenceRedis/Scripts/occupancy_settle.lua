-- Settles a client channel whose entry in the live-channel index lapsed (its subscribers' worker died or stalled):
-- when every subscription lapsed, the channel is vacated, and the webhook event written to each receiver's outbox in
-- the same step.
-- KEYS[1] pusher:channel:{<bucket tag>}:<channel>:sockets   KEYS[2..] outbox stream and byte count per receiver
-- (see occupancy_touch.lua)
-- ARGV[1] the webhook event channel_vacated ('' for an internal channel: see occupancy_touch.lua)
-- ARGV[2] outbox bound (entries)   ARGV[3] outbox bound (bytes)   ARGV[4] largest event (bytes)
-- ARGV[5..] per receiver: 'o' and/or 'v'
-- Returns 1 when this call emptied the set (vacated), else 0.
--#include clock
--#include outbox
local now = redis_now()
local total = redis.call('ZCARD', KEYS[1])
if total == 0 then return 0 end
local lapsed = redis.call('ZCOUNT', KEYS[1], '-inf', now)
if lapsed == total then
  redis.call('DEL', KEYS[1])
  outbox_announce(ARGV[1], 'v', 2)
  return 1
end
if lapsed > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
return 0
