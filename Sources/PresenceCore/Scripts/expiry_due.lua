-- The sweeper's work list: (room, user) presences whose expiry has passed, oldest first, on Redis's clock.
--
-- KEYS[1] presence:expiries   zset: "<roomId>:<user>" -> expiry (ms)
-- ARGV[1] batch size
-- Returns {now, {"room:user", ...}}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {now, redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))}
