-- A subscriber's recovery: the channel's current position and, when the subscriber's position is of this epoch and
-- still in the window, every event after it. Writes nothing: a subscribe to a channel without history creates no key.
--
-- KEYS[1] rec:{<channel>}       hash: epoch, offset (lib/recovery.lua)
-- KEYS[2] rec:{<channel>}:log   stream: entry `<offset>-0` {m, t}
-- ARGV[1] the window (ms)   ARGV[2] '1' when the subscriber names a position, else only the current one is wanted
-- ARGV[3] the subscriber's epoch   ARGV[4] its offset
--
-- A channel without history (no event yet, or Redis lost it) is at epoch `none`, offset 0. A position (`none`, 0) is
-- from before the channel's first event: every event of the current epoch is after it.
--
-- Returns {epoch, latest offset, recovered (1/0), the events after the subscriber's offset, in order...}. Not
-- recovered: another epoch, an offset past the latest, or the event after it is gone (trimmed, expired) or older
-- than the window.
--
-- redis-cli --eval recovery_read.lua 'rec:{room-x}' 'rec:{room-x}:log' , 300000 1 e1 0
--#include clock
local now = redis_now()
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local latest = 0
if epoch then latest = tonumber(redis.call('HGET', KEYS[1], 'offset')) or 0 else epoch = 'none' end
if ARGV[2] ~= '1' then return {epoch, latest, 0} end
local theirs, from = ARGV[3], tonumber(ARGV[4])
if theirs == 'none' and from == 0 then theirs = epoch end
if theirs ~= epoch or not from or from < 0 or from > latest or from ~= math.floor(from) then
  return {epoch, latest, 0}
end
if from == latest then return {epoch, latest, 1} end
local entries = redis.call('XRANGE', KEYS[2], (from + 1) .. '-0', '+')
if #entries ~= latest - from or entries[1][1] ~= (from + 1) .. '-0'
    or tonumber(entries[1][2][4]) < now - tonumber(ARGV[1]) then
  return {epoch, latest, 0}
end
local reply = {epoch, latest, 1}
for _, entry in ipairs(entries) do reply[#reply + 1] = entry[2][2] end
return reply
