-- The sliding-window log rate limiter, included (`--#include ratelimit`, after `--#include clock`) by
-- ratelimit_sliding.lua and user_switch_limited.lua: at most `limit` accepted requests in any window of `window` ms,
-- checked and recorded in one step on Redis's clock. Rejected requests are not recorded, so they never push the
-- window back. `key` is the sorted set (one member per accepted request, scored by its time, ms); `id` a unique id
-- for this request (no same-millisecond collisions); `mode` 'peek' only reads the state (nothing recorded, allowed =
-- whether one more would pass); `cost` how many requests this one counts as (default 1), all or none accepted.
-- Returns {allowed (1|0), remaining, ms until the oldest counted request leaves the window (0 if none), limit}.
local function ratelimit_sliding(key, limit, window, id, mode, cost)
  local now, t = redis_now()
  limit, window = tonumber(limit), tonumber(window)
  -- Every read comes before the writes (see presence_leave.lua: a migrating slot refuses access to a key a write emptied).
  local count = redis.call('ZCOUNT', key, '(' .. (now - window), '+inf')
  local oldest = redis.call('ZRANGEBYSCORE', key, '(' .. (now - window), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  cost = tonumber(cost or '1')
  local allowed = 0
  if mode == 'peek' then
    if count < limit then allowed = 1 end
  elseif count + cost <= limit then
    for i = 1, cost do
      redis.call('ZADD', key, now, t[1] .. t[2] .. ':' .. id .. ':' .. i)
    end
    redis.call('PEXPIRE', key, window)
    count = count + cost
    allowed = 1
  end
  local reset = 0
  if oldest[2] then
    reset = tonumber(oldest[2]) + window - now
  elseif allowed == 1 and mode ~= 'peek' then
    reset = window  -- the entry just added is the oldest
  end
  return {allowed, limit - count, reset, limit}
end
