-- Refreshes one socket of a user in a room (a presence channel's subscription) and the user's presence, only while
-- the socket's entry is still recorded and live: a socket that left meanwhile (socket_detach.lua) or lapsed is not
-- written back but reported, so a refresh that raced a leave never brings the socket back (which would hold the user
-- present after their last socket closed, and skip member_removed). The worker attaches again the ones it still holds.
--
-- KEYS[1] room:{id}:sockets:<user>   KEYS[2] room:{id}:members   KEYS[3] room:{id}:presence:<user> (native TTL, as
-- in presence_refresh.lua)
-- ARGV[1] socket   ARGV[2] user   ARGV[3] ttl (ms)
-- Returns 2: socket and presence refreshed; 1: socket refreshed, the user's presence had lapsed (not written);
-- 0: the socket's entry was missing or lapsed (nothing written).
--#include clock
local now = redis_now()
local ttl = tonumber(ARGV[3])
local expiresAt = now + ttl
local socket = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not socket) or tonumber(socket) <= now then
  return 0
end
local present = redis.call('ZSCORE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', expiresAt, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ttl * 2)
if (not present) or tonumber(present) <= now then
  return 1
end
-- A refresh moves an expiry later, never earlier: the sweeper's planned check for the room stays valid.
redis.call('ZADD', KEYS[2], expiresAt, ARGV[2])
redis.call('SET', KEYS[3], '1', 'PXAT', expiresAt)
return 2
