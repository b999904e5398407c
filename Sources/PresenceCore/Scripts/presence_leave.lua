-- Removes a user's presence from a room at once.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:joined   KEYS[4] room:{id}:presence:<user>
-- ARGV[1] user
--
-- Returns {left (1 = this call removed a present member: announce it), userCount, state, meta...}.
-- Whoever removes the member (this script or the sweeper) is the only one to announce its departure.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local user = ARGV[1]
local state = redis.call('GET', KEYS[4]) or '{}'
local removed = redis.call('ZREM', KEYS[2], user)
redis.call('ZREM', KEYS[3], user)
redis.call('DEL', KEYS[4])
local count = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
return {removed, count, state, redis.call('HGETALL', KEYS[1])}
