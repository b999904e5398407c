-- Creates a user record unless the name is taken.
--
-- KEYS[1] user:{name}
-- ARGV[1] username   ARGV[2] password hash (bcrypt)
-- ARGV[3] optional: 'bootstrap' marks an admin account made from ADMIN_PASSWORD (field admin), in the same step, so no
--         worker ever sees the account without its mark
-- Returns the creation time (ms), or 0 when the name is taken.
--#include clock
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local now = redis_now()
redis.call('HSET', KEYS[1], 'username', ARGV[1], 'passwordHash', ARGV[2], 'createdAt', now, 'lastActive', now)
if ARGV[3] == 'bootstrap' then
  redis.call('HSET', KEYS[1], 'admin', 'bootstrap')
end
return now
