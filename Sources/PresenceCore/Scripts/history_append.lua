-- Appends a message to a room's history (a stream capped at ARGV[1] entries) if the room exists.
-- The entry id (ms-seq, from Redis's clock) is the message id and its ms part the timestamp.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:history
-- ARGV[1] max entries   ARGV[2..] field, value, field, value ...
-- Returns the new entry id, or the error NOROOM (no such room) or CLOSED (closed support room).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('NOROOM room does not exist')
end
if redis.call('HGET', KEYS[1], 'closed') == '1' then
  return redis.error_reply('CLOSED room is closed')
end
local args = {'XADD', KEYS[2], 'MAXLEN', ARGV[1], '*'}
for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
return redis.call(unpack(args))
