-- Claims the members of one room whose presence expired. Run by every worker's sweeper; ZREM makes the
-- claim atomic, so each expiry is claimed (and announced) by exactly one worker.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:joined   KEYS[4] room:{id}:states
-- KEYS[5] room:{id}:presence:   the prefix of the members' native-TTL keys, not a key: the claimed users are known only
--         here, so each one's key is built from it (`<prefix><user>`: the room's hash tag, so the same slot, and runs
--         unchanged on a cluster) and deleted; a key that already expired by itself is gone, and deleting it is harmless
-- KEYS[6] room:{id}:attendance   optional: a support room's attendance (lib/attendance.lua): each claimed member's
--         interval is appended, reason `expired`, ending at their expiry
-- ARGV[1] the attendance list's cap (SUPPORT_ATTENDANCE_LIMIT; '' or absent with no KEYS[6])
--
-- Returns {userCount, {claimed users...}, {meta...}, now, next expiry ('' when no member is left)}.
-- Every read comes before the writes (see presence_leave.lua: a migrating slot refuses access to a key a write emptied);
-- removing expired members changes neither the count of the others nor the earliest of them.
--#include clock
--#include attendance
local now = redis_now()
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
local count = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
local first = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local meta = redis.call('HGETALL', KEYS[1])
-- States are kept only while not '{}': once the last is removed the hash is gone, and is not touched again.
local stated = redis.call('HLEN', KEYS[4])
local nextAt = ''
if first[2] then nextAt = first[2] end
-- A support room's attendance: each expired member's join time, expiry and state, read before any write.
local kept = #expired > 0 and attendance_kept(KEYS[6], ARGV[1], meta)
local ended = {}
if kept then
  for i, user in ipairs(expired) do
    ended[i] = {redis.call('ZSCORE', KEYS[3], user), tonumber(redis.call('ZSCORE', KEYS[2], user)),
                stated > 0 and redis.call('HGET', KEYS[4], user) or nil}
  end
end
local claimed = {}
for i, user in ipairs(expired) do
  if redis.call('ZREM', KEYS[2], user) == 1 then
    redis.call('ZREM', KEYS[3], user)
    if stated > 0 then stated = stated - redis.call('HDEL', KEYS[4], user) end
    redis.call('DEL', KEYS[5] .. user)
    if kept then attendance_record(KEYS[6], ARGV[1], user, ended[i][3], ended[i][1], ended[i][2], 'expired') end
    claimed[#claimed + 1] = user
  end
end
return {count, claimed, meta, now, nextAt}
