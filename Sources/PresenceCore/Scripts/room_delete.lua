-- Deletes a room with everything in it: metadata, presence, join order, access list, history.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:joined   KEYS[4] room:{id}:access
-- KEYS[5] room:{id}:history   KEYS[6] room:{id}:states
-- Returns nil when the room did not exist, else {meta..., {access members...}}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return nil
end
local meta = redis.call('HGETALL', KEYS[1])
local access = redis.call('SMEMBERS', KEYS[4])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
return {meta, access}
