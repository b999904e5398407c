-- Opens a support room on first use and records its customer (the first user to join as customer).
--
-- KEYS[1] room:{ticket_<id>}:meta
-- ARGV[1] room id   ARGV[2] ticket id   ARGV[3] user   ARGV[4] 'customer' to claim the customer seat, '' otherwise
-- Returns {created (1|0), meta...}.
local created = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'type', 'support', 'ticketId', ARGV[2], 'status', 'open',
    'createdAt', now, 'createdBy', ARGV[3], 'closed', '0')
  created = 1
end
if ARGV[4] == 'customer' then
  redis.call('HSETNX', KEYS[1], 'customer', ARGV[3])
end
return {created, redis.call('HGETALL', KEYS[1])}
