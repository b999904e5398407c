-- Removes a user's presence from a room at once.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:joined   KEYS[4] room:{id}:states
-- KEYS[5] room:{id}:presence:<user>   the member's native-TTL key: deleted (gone already when it expired by itself)
-- KEYS[6] room:{id}:attendance   optional: a support room's attendance (lib/attendance.lua): the member's interval is
--         appended, reason `left` (`expired`, ending at their expiry, when their presence had run out already)
-- ARGV[1] user
-- ARGV[2] the attendance list's cap (SUPPORT_ATTENDANCE_LIMIT; '' or absent with no KEYS[6])
-- ARGV[3..8] optional, for a chat switch on one Redis: the events that announce the departure here, in the same step
--         (`presence-update` on the room's channel and `pusher_internal:member_removed` on `presence-room-<id>`: see
--         lib/announce.lua and presence_join.lua)
--
-- Returns {left (1 = this call removed a present member: announce it), userCount, state, meta...}.
-- Whoever removes the member (this script or the sweeper) is the only one to announce its departure.
-- Every read comes before the writes: a write may empty a key, and while the slot migrates Redis refuses a script's
-- access to a key that is gone ("non local key"), after the writes before it were made.
--#include clock
--#include announce
--#include attendance
local now = redis_now()
local user = ARGV[1]
local state = redis.call('HGET', KEYS[4], user) or '{}'
local score = redis.call('ZSCORE', KEYS[2], user)
local count = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
local meta = redis.call('HGETALL', KEYS[1])
local kept = score and attendance_kept(KEYS[6], ARGV[2], meta)
local joined = kept and redis.call('ZSCORE', KEYS[3], user)
if score and tonumber(score) > now then count = count - 1 end
local removed = redis.call('ZREM', KEYS[2], user)
redis.call('ZREM', KEYS[3], user)
redis.call('HDEL', KEYS[4], user)
redis.call('DEL', KEYS[5])
if kept then
  if tonumber(score) > now then
    attendance_record(KEYS[6], ARGV[2], user, state, joined, now, 'left')
  else
    attendance_record(KEYS[6], ARGV[2], user, state, joined, tonumber(score), 'expired')
  end
end
if removed == 1 then announce(meta, 3, count) end
return {removed, count, state, meta}
