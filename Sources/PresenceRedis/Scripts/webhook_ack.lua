-- Forgets webhook events the receiver acknowledged: out of the group's pending list and the stream, counted as
-- delivered, and their bytes taken off the stream's byte count.
-- KEYS[1] webhooks:{tag}:<target>   KEYS[2] webhooks:{tag}:<target>:delivered   KEYS[3] webhooks:{tag}:<target>:bytes
-- ARGV entry ids
-- Returns how many were still in the stream (the others were dropped from a full outbox meanwhile, and counted so).
--#include outbox
local freed = 0
for i = 1, #ARGV do
  local entry = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])[1]
  if entry then freed = freed + outbox_cost(#outbox_text(entry)) end
end
redis.call('XACK', KEYS[1], 'delivery', unpack(ARGV))
local deleted = redis.call('XDEL', KEYS[1], unpack(ARGV))
if deleted > 0 then redis.call('INCRBY', KEYS[2], deleted) end
if freed > 0 then
  local bytes = redis.call('DECRBY', KEYS[3], freed)
  -- Nothing left, or a count from before it was kept (an upgrade): start again from zero.
  if bytes <= 0 or redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[3]) end
end
return deleted
