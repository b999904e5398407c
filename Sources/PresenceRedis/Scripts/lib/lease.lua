-- Leasing due entries of a sorted set scored by "look at it next" times (ms), included (`--#include lease`, after
-- `--#include clock`) by presence_due.lua (the sweeper's buckets) and lease_index.lua (the unattended and unseen
-- watchers' buckets). Each entry whose time has come, at most `limit`, is pushed `lease` ms on, so another worker's
-- watcher does not take it meanwhile; whatever the caller does with it stays exactly-once by its own step.
-- Returns now, {id, leasedUntil, id, leasedUntil, ...}.
local function lease_due(key, limit, lease)
  local now = redis_now()
  local ids = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, tonumber(limit))
  local until_ = now + tonumber(lease)
  local out = {}
  for _, id in ipairs(ids) do
    redis.call('ZADD', key, until_, id)
    out[#out + 1] = id
    out[#out + 1] = until_
  end
  return now, out
end
