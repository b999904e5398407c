-- Makes a closed support room live again, with its history.
--
-- KEYS[1] room:{ticket_<id>}:meta
-- Returns nil when the room does not exist, else {was closed (1|0), meta...}.
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local was = 0
if redis.call('HGET', KEYS[1], 'closed') == '1' then
  was = 1
  redis.call('HSET', KEYS[1], 'closed', '0')
  redis.call('HDEL', KEYS[1], 'closedAt', 'closedBy')
end
return {was, redis.call('HGETALL', KEYS[1])}
