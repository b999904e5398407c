-- A room's metadata, how many users are present now, and (private rooms) who may enter.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:access
-- Returns nil when the room does not exist, else {meta..., userCount, {access members...}}.
--#include clock
if redis.call('EXISTS', KEYS[1]) == 0 then
  return nil
end
local now = redis_now()
local count = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
return {redis.call('HGETALL', KEYS[1]), count, redis.call('SMEMBERS', KEYS[3])}
