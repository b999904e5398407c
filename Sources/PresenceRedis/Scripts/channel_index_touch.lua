-- Marks a client channel live in its bucket of the live-channel index (pusher:channels:{<bucket tag>}) until now + ttl.
-- Unlike expiring_touch.lua it prunes nothing: the settle pass reads the lapsed entries (expiring_lapsed.lua) to announce
-- channel_vacated for channels whose subscribers' worker died (occupancy_settle.lua), then forgets them
-- (expiring_forget.lua). Pruned here, a dead worker's channel would be gone from the index before the settle saw it
-- whenever another channel of its bucket was touched first, and its vacancy never announced.
-- KEYS[1] the index bucket   ARGV[1] channel   ARGV[2] ttl (ms)
-- Returns the channel's new expiry (ms).
--#include clock
local now = redis_now()
local expiry = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return expiry
