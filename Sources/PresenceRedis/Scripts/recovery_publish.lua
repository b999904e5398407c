-- Appends events to a recoverable channel's log and publishes them, in one step on the channel's slot: every event
-- delivered can be recovered, and offsets never repeat or go backwards, whichever worker publishes.
--
-- KEYS[1] rec:{<channel>}       hash: epoch, offset (lib/recovery.lua)
-- KEYS[2] rec:{<channel>}:log   stream: entry `<offset>-0` {m = the event's text, t = Redis's time, ms}
-- ARGV[1] PUBLISH (one Redis) or SPUBLISH (a cluster: the channel ch:{<channel>} is in this slot)
-- ARGV[2] the pub/sub channel, ch:{<channel>}
-- ARGV[3] a new epoch, used only when the channel has none   ARGV[4] the position's TTL (s)
-- ARGV[5] the window (ms)   ARGV[6] the most events kept
-- ARGV[7..] the events, in order: each a JSON object without its closing brace; each gets
--           ,"offset":<n>,"epoch":"<epoch>"} appended
--
-- Publishes one message: the event, or {"events": [...]} for several. Returns {last offset, epoch}.
--
-- redis-cli --eval recovery_publish.lua 'rec:{room-x}' 'rec:{room-x}:log' , PUBLISH 'ch:{room-x}' e1 86400 300000 \
--   1000 '{"event":"hello","channel":"room-x","data":"{}"'
--#include clock
--#include recovery
local now = redis_now()
local epoch, offset = recovery_position(ARGV[3], tonumber(ARGV[4]))
local window, keep = tonumber(ARGV[5]), ARGV[6]
local items = {}
for i = 7, #ARGV do
  offset = offset + 1
  local item = ARGV[i] .. ',"offset":' .. offset .. ',"epoch":"' .. epoch .. '"}'
  redis.call('XADD', KEYS[2], 'MAXLEN', keep, offset .. '-0', 'm', item, 't', now)
  items[#items + 1] = item
end
redis.call('HSET', KEYS[1], 'offset', offset)
-- Past the window: up to two of the oldest go with every append, one looked at at a time (a read checks the time of
-- what it returns as well).
for _ = 1, 2 do
  local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
  if not oldest or tonumber(oldest[2][4]) >= now - window then break end
  redis.call('XDEL', KEYS[2], oldest[1])
end
redis.call('PEXPIRE', KEYS[2], window)
if #items == 1 then
  redis.call(ARGV[1], ARGV[2], items[1])
elseif #items > 1 then
  redis.call(ARGV[1], ARGV[2], '{"events":[' .. table.concat(items, ',') .. ']}')
end
return {offset, epoch}
