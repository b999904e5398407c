-- user_switch.lua behind the presence rate limit, in one call (the keys share the user's hash tag): the sliding-window
-- check of ratelimit_sliding.lua first, and the user's bookkeeping only when the switch is allowed. Loaded with
-- ratelimit_sliding.lua's text in front of it, as the body of `local function ratelimit(KEYS, ARGV)` (Scripts.swift),
-- so the limiter's rules live in one file.
--
-- KEYS[1] user:{name}   KEYS[2] user:{name}:present   KEYS[3] ratelimit:presence:{name}
-- ARGV[1] previous room id ('' for none)   ARGV[2] next room id ('' for none)
-- ARGV[3] limit   ARGV[4] window (ms)   ARGV[5] a unique id for this request
--
-- Returns {allowed (1|0), remaining, ms until the oldest counted request leaves the window, limit, lastActive (0 when
-- refused, or when the user does not exist)}. A refused switch changes nothing.
local decision = ratelimit({KEYS[3]}, {ARGV[3], ARGV[4], ARGV[5], 'check', '1'})
if decision[1] == 0 then
  return {0, decision[2], decision[3], decision[4], 0}
end
if ARGV[1] ~= '' then redis.call('SREM', KEYS[2], ARGV[1]) end
if ARGV[2] ~= '' then redis.call('SADD', KEYS[2], ARGV[2]) end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {1, decision[2], decision[3], decision[4], 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'lastActive', now)
return {1, decision[2], decision[3], decision[4], now}
