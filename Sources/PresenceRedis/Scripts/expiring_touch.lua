-- Adds or refreshes a member of an expiring set (a sorted set scored by expiry, on Redis's clock).
-- KEYS[1] the sorted set   ARGV[1] member   ARGV[2] ttl (ms)
-- Returns the member's new expiry (ms).
--#include clock
local now = redis_now()
local expiry = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return expiry
