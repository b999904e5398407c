-- A worker announces itself for the operator console, or retires (ttl 0). Workers that stopped announcing are pruned.
-- KEYS[1] workers:{ops}:alive (sorted set: worker id -> expiry, ms on Redis's clock)
-- KEYS[2] workers:{ops}:info  (hash: worker id -> its announcement, JSON)
-- ARGV[1] worker id   ARGV[2] announcement (JSON)   ARGV[3] ttl (ms; 0 retires the worker)
-- Returns the number of workers alive after the change.
--#include clock
local now = redis_now()
local ttl = tonumber(ARGV[3])
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if ttl > 0 then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  -- The keys themselves go once no worker has announced for a while: four times the longest ttl announced, never
  -- shortened by a worker with a shorter one (that would drop the longer-lived workers' entries with the keys).
  local keep = ttl * 4
  if redis.call('PTTL', KEYS[1]) < keep then redis.call('PEXPIRE', KEYS[1], keep) end
  if redis.call('PTTL', KEYS[2]) < keep then redis.call('PEXPIRE', KEYS[2], keep) end
else
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
for _, id in ipairs(stale) do
  if id ~= ARGV[1] then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
  end
end
return redis.call('ZCARD', KEYS[1])
