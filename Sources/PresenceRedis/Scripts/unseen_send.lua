-- Writes one claimed unseen notice's `message_unseen` webhook event to the outbox of every receiver that wants it,
-- once (#32): the notice's marker (`<room>\n<member>\n<first message id>`) in `unseen:sent:{<tag>}` says it was written,
-- so a worker that takes over a dead one's claim (unseen_claim.lua) does not write it twice. On the slot of the room
-- channel's outbox bucket (`{<tag>}` of `private-room-<id>`, as every webhook event of that channel).
--
-- KEYS[1] unseen:sent:{<tag>}   sorted set: marker -> when written (ms); markers are kept a day
-- KEYS[2..] per receiver, its outbox stream and the stream's byte count (webhooks:{<tag>}:<receiver>[:bytes])
-- ARGV[1] the marker   ARGV[2] the event (JSON)   ARGV[3..5] the outbox bounds (entries, bytes, largest event)
-- Returns 1 when written here, 0 when it had been already.
--
-- redis-cli ZRANGE 'unseen:sent:{s3.0}' 0 -1 WITHSCORES
--#include clock
--#include outbox
local now = redis_now()
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
for r = 1, (#KEYS - 1) / 2 do
  outbox_add(KEYS[2 * r], KEYS[2 * r + 1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 86400000)
redis.call('PEXPIRE', KEYS[1], 2 * 86400000)
return 1
