-- Deletes a room with everything in it: metadata, presence, join order, access list, history.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:joined   KEYS[4] room:{id}:access
-- KEYS[5] room:{id}:history
-- ARGV[1] the presence key prefix 'room:{id}:presence:' (same hash tag; one key per present user)
-- Returns nil when the room did not exist, else {meta..., {access members...}}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return nil
end
local meta = redis.call('HGETALL', KEYS[1])
local access = redis.call('SMEMBERS', KEYS[4])
for _, user in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  redis.call('DEL', ARGV[1] .. user)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return {meta, access}
