-- Members of an expiring set whose expiry passed (at most ARGV[1]), oldest first, left in place.
-- KEYS[1] the sorted set   ARGV[1] most to return
-- Returns {{member, expiry}...} flattened: member, expiry, member, expiry, ...
--#include clock
local now = redis_now()
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
