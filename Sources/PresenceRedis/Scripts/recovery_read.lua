-- A subscriber's recovery: the channel's current position and, when the subscriber's position is of this epoch and
-- still in the window, every event after it.
--
-- KEYS[1] rec:{<channel>}       hash: epoch, offset (lib/recovery.lua)
-- KEYS[2] rec:{<channel>}:log   stream: entry `<offset>-0` {m, t}
-- ARGV[1] a new epoch, used only when the channel has none   ARGV[2] the position's TTL (s)   ARGV[3] the window (ms)
-- ARGV[4] the subscriber's epoch ('' for none: only the position is wanted)   ARGV[5] its offset
--
-- Returns {epoch, latest offset, recovered (1/0), the events after the subscriber's offset, in order...}. Not
-- recovered: another epoch, an offset past the latest, or the event after it is gone (trimmed, expired) or older
-- than the window.
--
-- redis-cli --eval recovery_read.lua 'rec:{room-x}' 'rec:{room-x}:log' , e1 86400 300000 e1 0
--#include clock
--#include recovery
local now = redis_now()
local epoch, latest = recovery_position(ARGV[1], tonumber(ARGV[2]))
local from = tonumber(ARGV[5])
if ARGV[4] == '' or ARGV[4] ~= epoch or not from or from < 0 or from > latest or from ~= math.floor(from) then
  return {epoch, latest, 0}
end
if from == latest then return {epoch, latest, 1} end
local entries = redis.call('XRANGE', KEYS[2], (from + 1) .. '-0', '+')
if #entries ~= latest - from or entries[1][1] ~= (from + 1) .. '-0'
    or tonumber(entries[1][2][4]) < now - tonumber(ARGV[3]) then
  return {epoch, latest, 0}
end
local reply = {epoch, latest, 1}
for _, entry in ipairs(entries) do reply[#reply + 1] = entry[2][2] end
return reply
