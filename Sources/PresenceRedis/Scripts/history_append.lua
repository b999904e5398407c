-- Appends a message to a room's history (a stream of at most ARGV[1] entries) if the room exists.
-- The entry id (ms-seq, from Redis's clock) is the message id and its ms part the timestamp.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:history
-- ARGV[1] max entries   ARGV[2] 'trim' (drop the oldest past the cap) or 'refuse' (refuse new ones at the cap)
-- ARGV[3..] field, value, field, value ...
-- Returns the new entry id, or the error NOROOM (no such room), CLOSED (closed support room) or FULL (at the cap,
-- 'refuse').
--#include room
local refusal = room_refusal(KEYS[1])
if refusal then return refusal end
local args
if ARGV[2] == 'refuse' then
  if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[1]) then
    return redis.error_reply('FULL transcript is full')
  end
  args = {'XADD', KEYS[2], '*'}
else
  args = {'XADD', KEYS[2], 'MAXLEN', ARGV[1], '*'}
end
for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
return redis.call(unpack(args))
