-- Leases the rooms of one sweeper bucket that are due for a check: each is pushed `lease` ms into the future, so
-- another worker's sweeper does not take it in the meantime (claims stay exactly-once either way: presence_sweep.lua
-- ZREMs each member it claims).
--
-- KEYS[1] presence:rooms:{<tag>}   zset: room id -> next check (ms)
-- ARGV[1] batch size   ARGV[2] lease (ms)
--
-- Returns {now, {room, leasedUntil, room, leasedUntil, ...}}.
--#include clock
local now = redis_now()
local rooms = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local until_ = now + tonumber(ARGV[2])
local out = {}
for _, room in ipairs(rooms) do
  redis.call('ZADD', KEYS[1], until_, room)
  out[#out + 1] = room
  out[#out + 1] = until_
end
return {now, out}
