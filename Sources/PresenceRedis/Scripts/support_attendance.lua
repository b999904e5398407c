-- Reads a support ticket's attendance in one step, on Redis's clock: the intervals kept (presences that ended, as
-- lib/attendance.lua wrote them, oldest first) and the members present now with their join times and states.
--
-- KEYS[1] room:{ticket_<id>}:attendance   KEYS[2] room:{ticket_<id>}:members   KEYS[3] room:{ticket_<id>}:joined
-- KEYS[4] room:{ticket_<id>}:states
-- Returns {{interval JSON...}, {user, join time ('' when missing), state JSON ('' when none), ...}}.
--
-- redis-cli --eval support_attendance.lua 'room:{ticket_42}:attendance' 'room:{ticket_42}:members' \
--   'room:{ticket_42}:joined' 'room:{ticket_42}:states'
--#include clock
local now = redis_now()
local ended = redis.call('LRANGE', KEYS[1], 0, -1)
local present = {}
for _, user in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf')) do
  present[#present + 1] = user
  present[#present + 1] = redis.call('ZSCORE', KEYS[3], user) or ''
  present[#present + 1] = redis.call('HGET', KEYS[4], user) or ''
end
return {ended, present}
