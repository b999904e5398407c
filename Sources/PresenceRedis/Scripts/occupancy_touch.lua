-- Records (or refreshes) one socket's subscription to a client channel, and announces the channel occupied when it is
-- the first live subscriber, writing the webhook event to each receiver's outbox in the same step.
-- KEYS[1] pusher:channel:{<bucket tag>}:<channel>:sockets (socket id -> expiry, ms, on Redis's clock)
-- KEYS[2..] per receiver that wants occupancy events, two keys: its outbox stream (webhooks:{<bucket tag>}:<receiver>)
--           and the stream's byte count (webhooks:{<bucket tag>}:<receiver>:bytes); none for a # channel
-- ARGV[1] socket   ARGV[2] ttl (ms)
-- ARGV[3] the webhook event channel_occupied, ARGV[4] channel_vacated, as the worker wrote them (WebhookEvent.json);
--         '' for the service's internal channels (#signed-in, #server-to-user-<id>), which send no webhooks (the
--         caller passes no outbox for them either)
-- ARGV[5] outbox bound (entries)   ARGV[6] outbox bound (bytes)   ARGV[7] largest event (bytes)
-- ARGV[8..] per receiver in KEYS[2..]: the events it wants, 'o' (channel_occupied) and/or 'v' (channel_vacated)
-- Returns 0: the channel had a live subscriber already; 1: this is its first (occupied);
-- 2: its only subscribers had lapsed and were never announced gone: vacated, then occupied again.
-- Only the call that finds no live subscriber answers 1 or 2, so each change is announced once in the cluster.
-- Reads come first, and the add before the prune keeps the key alive (see presence_leave.lua on migrating slots).
--#include clock
--#include outbox
local now = redis_now()
local total = redis.call('ZCARD', KEYS[1])
local lapsed = redis.call('ZCOUNT', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if lapsed > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
-- Kept well past the last expiry, so the settle (every few seconds) finds a dead worker's subscribers before Redis drops them.
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2 + 60000)
if total - lapsed > 0 then return 0 end
if lapsed > 0 then
  outbox_announce(ARGV[4], 'v', 5)
  outbox_announce(ARGV[3], 'o', 5)
  return 2
end
outbox_announce(ARGV[3], 'o', 5)
return 1
