-- Refreshes a present user's TTL (heartbeat, typing), optionally replacing the member state.
--
-- KEYS[1] room:{id}:members   KEYS[2] room:{id}:states (hash: user -> state JSON, absent for '{}')   KEYS[3] room:{id}:joined
-- KEYS[4] room:{id}:presence:<user>   string '1': its native TTL is pushed back to the new expiresAt, the score written
--         to KEYS[1] (SET PXAT, the absolute expiry PEXPIREAT sets, same TIME; written again if it was missing)
-- ARGV[1] user   ARGV[2] ttl (ms)   ARGV[3] new state JSON, or '' to keep it
--
-- Returns {expiresAt, now, joinedAt, oldState, newState}, or nil when the user is not present (never joined,
-- left, or expired).
--#include clock
local now = redis_now()
local user, ttl = ARGV[1], tonumber(ARGV[2])
local score = redis.call('ZSCORE', KEYS[1], user)
if (not score) or tonumber(score) <= now then
  return nil
end
local expiresAt = now + ttl
local old = redis.call('HGET', KEYS[2], user) or '{}'
local joinedAt = tonumber(redis.call('ZSCORE', KEYS[3], user) or now)
redis.call('ZADD', KEYS[1], expiresAt, user)
redis.call('SET', KEYS[4], '1', 'PXAT', expiresAt)
local new = ARGV[3]
if new == '' then new = old end
if new ~= old then
  if new == '{}' then redis.call('HDEL', KEYS[2], user) else redis.call('HSET', KEYS[2], user, new) end
end
return {expiresAt, now, joinedAt, old, new}
