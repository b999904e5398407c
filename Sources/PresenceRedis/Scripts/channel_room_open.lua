-- Makes sure a generic presence channel has a room for the presence engine (type 'channel').
-- KEYS[1] room:{pch:<channel>}:meta   ARGV[1] room id   ARGV[2] channel
--#include clock
if redis.call('EXISTS', KEYS[1]) == 0 then
  local now = redis_now()
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'type', 'channel', 'channel', ARGV[2], 'createdAt', now)
end
return 1
