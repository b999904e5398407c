-- A WebSocket leaves a presence channel. The user leaves the room only when none of their sockets (on any
-- worker) is left; sockets of a dead worker stop being refreshed and lapse.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:joined   KEYS[4] room:{id}:states
-- KEYS[5] room:{id}:sockets:<user>   KEYS[6] room:{id}:presence:<user> (the native-TTL key, deleted with the member)
-- KEYS[7] room:{id}:attendance   optional: a support room's attendance (lib/attendance.lua), as presence_leave.lua
--         (support rooms are not presence channels today: `presence-room-ticket_…` is refused, so this is a guard)
-- ARGV[1] user   ARGV[2] socket id   ARGV[3] the attendance list's cap (SUPPORT_ATTENDANCE_LIMIT; '' with no KEYS[7])
-- Returns {left (1 = this call removed the user: announce it), userCount, {meta...}}.
-- Every read comes before the writes (see presence_leave.lua: a migrating slot refuses access to a key a write emptied).
--#include clock
--#include attendance
local now = redis_now()
local others = 0
for _, socket in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '(' .. now, '+inf')) do
  if socket ~= ARGV[2] then others = others + 1 end
end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
local count = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
local meta = redis.call('HGETALL', KEYS[1])
local kept = others == 0 and score and attendance_kept(KEYS[7], ARGV[3], meta)
local joined = kept and redis.call('ZSCORE', KEYS[3], ARGV[1])
local state = kept and redis.call('HGET', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
local left = 0
if others == 0 then
  left = redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
  redis.call('DEL', KEYS[5], KEYS[6])
  if score and tonumber(score) > now then count = count - 1 end
  if kept then
    if tonumber(score) > now then
      attendance_record(KEYS[7], ARGV[3], ARGV[1], state, joined, now, 'left')
    else
      attendance_record(KEYS[7], ARGV[3], ARGV[1], state, joined, tonumber(score), 'expired')
    end
  end
end
return {left, count, meta}
