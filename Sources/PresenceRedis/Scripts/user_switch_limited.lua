-- user_switch.lua behind the presence rate limit, in one call (the keys share the user's hash tag): the sliding-window
-- check of ratelimit_sliding.lua first (the same function, lib/ratelimit.lua, included), and the user's bookkeeping
-- only when the switch is allowed.
--
-- KEYS[1] user:{name}   KEYS[2] user:{name}:present   KEYS[3] ratelimit:presence:{name}
-- ARGV[1] previous room id ('' for none)   ARGV[2] next room id ('' for none)
-- ARGV[3] limit   ARGV[4] window (ms)   ARGV[5] a unique id for this request
--
-- Returns {allowed (1|0), remaining, ms until the oldest counted request leaves the window, limit, lastActive (0 when
-- refused, or when the user does not exist)}. A refused switch changes nothing.
--#include clock
--#include ratelimit
--#include user_switch
local decision = ratelimit_sliding(KEYS[3], ARGV[3], ARGV[4], ARGV[5], 'check', '1')
if decision[1] == 0 then
  return {0, decision[2], decision[3], decision[4], 0}
end
return {1, decision[2], decision[3], decision[4], user_switch(KEYS[1], KEYS[2], ARGV[1], ARGV[2])}
