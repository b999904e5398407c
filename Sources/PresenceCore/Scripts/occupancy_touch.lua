-- Records (or refreshes) one socket's subscription to a client channel, and says whether the channel became occupied.
-- KEYS[1] pusher:channel:{<channel>}:sockets (socket id -> expiry, ms, on Redis's clock)   ARGV[1] socket   ARGV[2] ttl (ms)
-- Returns 0: the channel had a live subscriber already; 1: this is its first (channel_occupied);
-- 2: its only subscribers had lapsed (channel_vacated, not announced yet) and this is the first again.
-- Only the call that finds no live subscriber answers 1 or 2, so each transition is announced once in the cluster.
-- Reads come first, and the add before the prune keeps the key alive (see presence_leave.lua on migrating slots).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total = redis.call('ZCARD', KEYS[1])
local lapsed = redis.call('ZCOUNT', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if lapsed > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
-- Kept well past the last expiry, so the settle (every few seconds) finds a dead worker's subscribers before Redis drops them.
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2 + 60000)
if total - lapsed > 0 then return 0 end
if lapsed > 0 then return 2 end
return 1
