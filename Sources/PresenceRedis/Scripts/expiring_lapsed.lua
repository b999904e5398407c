-- Members of an expiring set whose expiry passed (at most ARGV[1]), oldest first, left in place.
-- KEYS[1] the sorted set   ARGV[1] most to return
-- Returns {{member, expiry}...} flattened: member, expiry, member, expiry, ...
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
