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
