-- Live members of an expiring set (expiry ahead of Redis's clock), with their count.
-- KEYS[1] the sorted set
-- Returns {count, {members...}}.
--#include clock
local now = redis_now()
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
return {#members, members}
