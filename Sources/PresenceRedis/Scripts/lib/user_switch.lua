-- A user's own bookkeeping for a presence switch, included (`--#include user_switch`, after `--#include clock`) by
-- user_switch.lua and user_switch_limited.lua: the set of rooms the user is present in (`present`) moves from
-- `previous` to `next` (either '' for none), and the user's hash (`user`) gets lastActive = Redis's clock now, if the
-- user exists. Returns lastActive, or 0 when the user does not exist (nothing is touched then but the set).
local function user_switch(user, present, previous, next)
  if previous ~= '' then redis.call('SREM', present, previous) end
  if next ~= '' then redis.call('SADD', present, next) end
  if redis.call('EXISTS', user) == 0 then return 0 end
  local now = redis_now()
  redis.call('HSET', user, 'lastActive', now)
  return now
end
