-- Enters (or refreshes) a user's presence in a room, atomically, on Redis's clock.
--
-- KEYS[1] room:{id}:meta             hash: the room must exist
-- KEYS[2] room:{id}:members          zset: user -> presence expiry (ms)
-- KEYS[3] room:{id}:joined           zset: user -> join time (ms), for join-order listing
-- KEYS[4] room:{id}:presence:<user>  string with native TTL: the member's state (JSON)
-- ARGV[1] user   ARGV[2] ttl (ms)   ARGV[3] member state JSON ('' keeps the current one, '{}' when none)
--
-- Returns {joined (1 = was not present), userCount, joinedAt, expiresAt, now, state, {meta...}, previous state}
-- or the error NOROOM when the room does not exist, CLOSED when it is a closed support room.
--
-- redis-cli --eval presence_join.lua 'room:{general}:meta' 'room:{general}:members' \
--   'room:{general}:joined' 'room:{general}:presence:alice' , alice 90000 ''
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('NOROOM room does not exist')
end
if redis.call('HGET', KEYS[1], 'closed') == '1' then
  return redis.error_reply('CLOSED room is closed')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local user, ttl = ARGV[1], tonumber(ARGV[2])
local expiresAt = now + ttl

local score = redis.call('ZSCORE', KEYS[2], user)
local joined = 0
if (not score) or tonumber(score) <= now then
  joined = 1
end

local joinedAt
if joined == 1 then
  joinedAt = now
  redis.call('ZADD', KEYS[3], now, user)
else
  joinedAt = tonumber(redis.call('ZSCORE', KEYS[3], user) or now)
end
redis.call('ZADD', KEYS[2], expiresAt, user)

local old = '{}'
if joined == 0 then old = redis.call('GET', KEYS[4]) or '{}' end
local state = ARGV[3]
if state == '' then state = old end
redis.call('SET', KEYS[4], state, 'PX', ttl)

local count = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
return {joined, count, joinedAt, expiresAt, now, state, redis.call('HGETALL', KEYS[1]), old}
