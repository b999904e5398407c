-- Registers a room with the sweeper before a member enters it: the room is checked for expired members no later than
-- the new presence's expiry. Sent before presence_join.lua (in the same pipeline on one Redis, or awaited first on a
-- cluster), so every member a join writes is in a registered room, whatever happens to the worker afterwards.
--
-- KEYS[1] presence:rooms:{<tag>}          zset: room id -> when the sweeper checks it next (ms, Redis clock)
-- KEYS[2] presence:rooms:{<tag>}:touched  hash: room id -> last registration (ms); a room is dropped only long after
-- ARGV[1] room id   ARGV[2] ttl (ms)
--
-- Returns {the room's check time, Redis's clock now} (ms). `LT`: an earlier check already planned stays.
--#include clock
local now = redis_now()
local room = ARGV[1]
redis.call('ZADD', KEYS[1], 'LT', now + tonumber(ARGV[2]), room)
redis.call('HSET', KEYS[2], room, now)
return {tonumber(redis.call('ZSCORE', KEYS[1], room)), now}
