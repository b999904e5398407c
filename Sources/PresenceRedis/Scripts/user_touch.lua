-- Sets a user's lastActive to Redis's clock now, if the user exists.
-- KEYS[1] user:{name}
--#include clock
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local now = redis_now()
redis.call('HSET', KEYS[1], 'lastActive', now)
return now
