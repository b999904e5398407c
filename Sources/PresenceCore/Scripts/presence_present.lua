-- Everyone present in a room now, with their presence expiry: one range query over the room's sorted set
-- (members whose expiry is ahead of Redis's clock), no lookup per member.
-- KEYS[1] room:{id}:members
-- Returns {user1, expiry1, user2, expiry2, ...} (expiries in ms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
