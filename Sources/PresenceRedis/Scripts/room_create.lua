-- Creates a room unless it exists (several workers creating the same default room at once: exactly one wins,
-- the others see it exists).
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:access
-- ARGV[1] id   ARGV[2] name   ARGV[3] type (public|private|support)   ARGV[4] createdBy   ARGV[5..] members
-- Returns {created (1|0), createdAt}.
--#include clock
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, tonumber(redis.call('HGET', KEYS[1], 'createdAt') or 0)}
end
local now = redis_now()
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'name', ARGV[2], 'type', ARGV[3], 'createdAt', now, 'createdBy', ARGV[4])
for i = 5, #ARGV do
  redis.call('SADD', KEYS[2], ARGV[i])
end
return {1, now}
