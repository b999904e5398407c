-- Users present in a room now: members whose expiry is still ahead, on Redis's clock.
-- KEYS[1] room:{id}:members
--#include clock
local now = redis_now()
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
