-- Leases the rooms of one sweeper bucket that are due for a check: each is pushed `lease` ms into the future, so
-- another worker's sweeper does not take it in the meantime (claims stay exactly-once either way: presence_sweep.lua
-- ZREMs each member it claims).
--
-- KEYS[1] presence:rooms:{<tag>}   zset: room id -> next check (ms)
-- ARGV[1] batch size   ARGV[2] lease (ms)
--
-- Returns {now, {room, leasedUntil, room, leasedUntil, ...}}.
--#include clock
--#include lease
local now, out = lease_due(KEYS[1], ARGV[1], ARGV[2])
return {now, out}
