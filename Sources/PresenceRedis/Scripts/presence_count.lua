-- Users present in a room now: members whose expiry is still ahead, on Redis's clock.
-- KEYS[1] room:{id}:members
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
