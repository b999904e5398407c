-- Sets a user's lastActive to Redis's clock now, if the user exists.
-- KEYS[1] user:{name}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'lastActive', now)
return now
