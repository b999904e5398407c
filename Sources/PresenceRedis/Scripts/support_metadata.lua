-- Partial update of a support room's metadata, field by field, so two agents changing different fields at once
-- both win. Creates the room when it does not exist.
--
-- KEYS[1] room:{ticket_<id>}:meta
-- ARGV[1] room id   ARGV[2] ticket id   ARGV[3] user   ARGV[4..] field, value pairs; an empty value clears the field
-- Returns {changed (1|0), meta...}.
--#include clock
if redis.call('EXISTS', KEYS[1]) == 0 then
  local now = redis_now()
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'type', 'support', 'ticketId', ARGV[2], 'status', 'open',
    'createdAt', now, 'createdBy', ARGV[3], 'closed', '0')
end
local changed = 0
for i = 4, #ARGV, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  local current = redis.call('HGET', KEYS[1], field)
  if value == '' then
    if current then
      redis.call('HDEL', KEYS[1], field)
      changed = 1
    end
  elseif current ~= value then
    redis.call('HSET', KEYS[1], field, value)
    changed = 1
  end
end
return {changed, redis.call('HGETALL', KEYS[1])}
