-- Opens a support room on first use, or lets a participant join it. The customer seat is taken by whoever creates
-- the room joining as customer, or, on an open room an agent opened without naming a customer, by the first user to
-- join as customer (the seed's order: metadata first, then the customer). An agent may name the customer in advance
-- (support_metadata), which locks the seat. A refused join changes nothing; a closed room takes no joins.
--
-- KEYS[1] room:{ticket_<id>}:meta
-- ARGV[1] room id   ARGV[2] ticket id   ARGV[3] user   ARGV[4] 'customer' to join as customer, '' otherwise
-- ARGV[5] '1' when the user is an agent or admin
-- Returns {created (1|0), meta...}, or the error FORBIDDEN (neither an agent nor the ticket's customer) or CLOSED.
--#include clock
if redis.call('EXISTS', KEYS[1]) == 0 then
  local now = redis_now()
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'type', 'support', 'ticketId', ARGV[2], 'status', 'open',
    'createdAt', now, 'createdBy', ARGV[3], 'closed', '0')
  if ARGV[4] == 'customer' then
    redis.call('HSET', KEYS[1], 'customer', ARGV[3])
  end
  return {1, redis.call('HGETALL', KEYS[1])}
end
if redis.call('HGET', KEYS[1], 'type') ~= 'support' then
  return redis.error_reply('FORBIDDEN not a support room')
end
-- Agents join any ticket (as any role; joining as customer does not take the seat); anyone else only as its customer,
-- or as the first customer of a ticket whose seat is free.
local customer = redis.call('HGET', KEYS[1], 'customer')
if ARGV[5] ~= '1' and customer ~= ARGV[3] and (customer or ARGV[4] ~= 'customer') then
  return redis.error_reply('FORBIDDEN not a participant')
end
if redis.call('HGET', KEYS[1], 'closed') == '1' then
  return redis.error_reply('CLOSED room is closed')
end
if ARGV[5] ~= '1' and not customer then
  redis.call('HSET', KEYS[1], 'customer', ARGV[3])
end
return {0, redis.call('HGETALL', KEYS[1])}
