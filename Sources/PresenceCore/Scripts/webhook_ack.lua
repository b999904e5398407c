-- Forgets webhook events the receiver acknowledged: out of the group's pending list and the stream, and counted.
-- KEYS[1] webhooks:{tag}:<target>   KEYS[2] webhooks:{tag}:<target>:delivered   ARGV entry ids
-- Returns how many were still in the stream (the others were dropped from a full outbox meanwhile, and counted so).
redis.call('XACK', KEYS[1], 'delivery', unpack(ARGV))
local deleted = redis.call('XDEL', KEYS[1], unpack(ARGV))
if deleted > 0 then redis.call('INCRBY', KEYS[2], deleted) end
return deleted
