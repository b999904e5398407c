-- user_switch.lua behind the presence rate limit, in one call (the keys share the user's hash tag): the sliding-window
-- check of ratelimit_sliding.lua first, and the user's bookkeeping only when the switch is allowed. Redis scripts
-- cannot include one another, so ratelimit_sliding.lua's text is copied below, unchanged, as the body of a local
-- function; a test ("Presence switch in Redis") fails when the copy and the file differ.
--
-- KEYS[1] user:{name}   KEYS[2] user:{name}:present   KEYS[3] ratelimit:presence:{name}
-- ARGV[1] previous room id ('' for none)   ARGV[2] next room id ('' for none)
-- ARGV[3] limit   ARGV[4] window (ms)   ARGV[5] a unique id for this request
--
-- Returns {allowed (1|0), remaining, ms until the oldest counted request leaves the window, limit, lastActive (0 when
-- refused, or when the user does not exist)}. A refused switch changes nothing.
local function ratelimit(KEYS, ARGV)
-- Sliding-window log rate limiter: at most ARGV[1] accepted requests in any window of ARGV[2] ms.
-- Checks and records in one step, on Redis's clock. Rejected requests are not recorded, so they never push
-- the window back.
--
-- KEYS[1] ratelimit:<name>:{<subject>}   sorted set: one member per accepted request, scored by its time (ms)
-- ARGV[1] limit   ARGV[2] window (ms)   ARGV[3] a unique id for this request (no same-millisecond collisions)
-- ARGV[4] 'peek' to only read the state (nothing recorded, allowed = whether one more would pass)
-- ARGV[5] cost: how many requests this one counts as (default 1); all or none of them are accepted
--
-- Returns {allowed (1|0), remaining, ms until the oldest counted request leaves the window (0 if none), limit}.
--
-- redis-cli --eval ratelimit_sliding.lua 'ratelimit:ai:{alice}' , 5 60000 req-1
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
-- Every read comes before the writes (see presence_leave.lua: a migrating slot refuses access to a key a write emptied).
local count = redis.call('ZCOUNT', KEYS[1], '(' .. (now - window), '+inf')
local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - window), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local cost = tonumber(ARGV[5] or '1')
local allowed = 0
if ARGV[4] == 'peek' then
  if count < limit then allowed = 1 end
elseif count + cost <= limit then
  for i = 1, cost do
    redis.call('ZADD', KEYS[1], now, t[1] .. t[2] .. ':' .. ARGV[3] .. ':' .. i)
  end
  redis.call('PEXPIRE', KEYS[1], window)
  count = count + cost
  allowed = 1
end
local reset = 0
if oldest[2] then
  reset = tonumber(oldest[2]) + window - now
elseif allowed == 1 and ARGV[4] ~= 'peek' then
  reset = window  -- the entry just added is the oldest
end
return {allowed, limit - count, reset, limit}
end -- of the copy of ratelimit_sliding.lua

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
