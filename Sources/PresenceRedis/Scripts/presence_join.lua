-- Enters (or refreshes) a user's presence in a room, atomically, on Redis's clock.
--
-- KEYS[1] room:{id}:meta             hash: the room must exist
-- KEYS[2] room:{id}:members          zset: user -> presence expiry (ms)
-- KEYS[3] room:{id}:joined           zset: user -> join time (ms), for join-order listing
-- KEYS[4] room:{id}:states           hash: user -> the member's state (JSON), only while it is not '{}'
-- KEYS[5] room:{id}:presence:<user>  string '1' whose native TTL is the presence: it expires at expiresAt, the score
--                                    written to KEYS[2] (SET PXAT, the absolute expiry PEXPIREAT sets, same TIME)
-- KEYS[6] room:{id}:unseen           hash: the members' pending `message_unseen` notices (unseen_post.lua): a member
--                                    who is present has seen the room, so theirs is dropped here (suppressed)
-- KEYS[7] room:{id}:attendance       optional: a support room's attendance (lib/attendance.lua). A join over the
--                                    user's expired entry, which the sweeper has not claimed yet, ends that presence
--                                    here: its interval is appended, reason `expired`, ending at its expiry
-- ARGV[1] user   ARGV[2] ttl (ms)   ARGV[3] member state JSON ('' keeps the current one, '{}' when none)
-- Optional (each '' when not wanted):
-- ARGV[4] '' when presence_register.lua ran just before in the same pipeline; else when the sweeper plans to check
--         the room next (ms, as that script last answered): the join goes ahead only while Redis's clock is more than
--         a second short of it (the sweeper has not looked at the room since) and the plan is no later than the new
--         expiry, else the error STALE (register again)
-- ARGV[5] 'public': the room must be public, else the error NOTPUBLIC (the caller skipped the access check)
-- ARGV[6] a member cap (an app's presence channel, PUSHER_MAX_PRESENCE_MEMBERS): a user not present yet is refused
--         with the error FULL when that many are present; one present already is refreshed as ever
-- ARGV[7] the attendance list's cap (SUPPORT_ATTENDANCE_LIMIT; '' with no KEYS[7])
-- ARGV[8..13] for a chat switch on one Redis: the events that announce a new member here, in the same step
--         (`presence-update` on the room's channel, for either type of room, and `pusher_internal:member_added` on
--         `presence-room-<id>`: see lib/announce.lua); absent, the caller announces (on a Redis Cluster a
--         channel's SPUBLISH goes to the channel's own slot, so the worker publishes the same events there)
--
-- Returns {joined (1 = was not present), userCount, joinedAt, expiresAt, now, state, {meta...}, previous state,
-- unseen notices dropped (0 or 1)}
-- or the error NOROOM when the room does not exist, CLOSED when it is a closed support room.
--
-- redis-cli --eval presence_join.lua 'room:{general}:meta' 'room:{general}:members' \
--   'room:{general}:joined' 'room:{general}:states' 'room:{general}:presence:alice' 'room:{general}:unseen' , \
--   alice 90000 ''
--#include clock
--#include room
--#include announce
--#include attendance
local refusal = room_refusal(KEYS[1])
if refusal then return refusal end
if ARGV[5] == 'public' and redis.call('HGET', KEYS[1], 'type') ~= 'public' then
  return redis.error_reply('NOTPUBLIC room is not public')
end
local now = redis_now()
local user, ttl = ARGV[1], tonumber(ARGV[2])
local expiresAt = now + ttl
if ARGV[4] and ARGV[4] ~= '' and (now >= tonumber(ARGV[4]) - 1000 or tonumber(ARGV[4]) > expiresAt) then
  return redis.error_reply('STALE the sweeper plan for the room does not cover this join: register it again')
end

local score = redis.call('ZSCORE', KEYS[2], user)
local joined = 0
if (not score) or tonumber(score) <= now then
  joined = 1
end
if joined == 1 and ARGV[6] and ARGV[6] ~= '' and redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') >= tonumber(ARGV[6]) then
  return redis.error_reply('FULL the room has its cap of present members')
end

-- An expired entry the sweeper has not claimed: in a support room its presence ends here (read before any write).
local lapsed = nil
if score and joined == 1 and KEYS[7] and tonumber(ARGV[7]) and redis.call('HGET', KEYS[1], 'type') == 'support' then
  lapsed = {redis.call('ZSCORE', KEYS[3], user), tonumber(score), redis.call('HGET', KEYS[4], user)}
end

local joinedAt
if joined == 1 then
  joinedAt = now
  redis.call('ZADD', KEYS[3], now, user)
else
  joinedAt = tonumber(redis.call('ZSCORE', KEYS[3], user) or now)
end
redis.call('ZADD', KEYS[2], expiresAt, user)
redis.call('SET', KEYS[5], '1', 'PXAT', expiresAt)

-- A member who expired keeps an entry until the sweeper claims it: a new presence starts from '{}'.
local old = '{}'
if joined == 0 then old = redis.call('HGET', KEYS[4], user) or '{}' end
local state = ARGV[3]
if state == '' then state = old end
if state == '{}' then redis.call('HDEL', KEYS[4], user) else redis.call('HSET', KEYS[4], user, state) end

local count = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
local meta = redis.call('HGETALL', KEYS[1])
if lapsed then attendance_record(KEYS[7], ARGV[7], user, lapsed[3], lapsed[1], lapsed[2], 'expired') end
if joined == 1 then announce(meta, 8, count) end
local seen = redis.call('HDEL', KEYS[6], user)
return {joined, count, joinedAt, expiresAt, now, state, meta, old, seen}
