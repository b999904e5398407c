-- Records (or refreshes) one socket's subscription to a client channel, and announces the channel occupied when it is
-- the first live subscriber, writing the webhook event to each receiver's outbox in the same step.
-- KEYS[1] pusher:channel:{<bucket tag>}:<channel>:sockets (socket id -> expiry, ms, on Redis's clock)
-- KEYS[2..] the outbox streams of the receivers that want occupancy events (webhooks:{<bucket tag>}:<receiver>)
-- ARGV[1] socket   ARGV[2] ttl (ms)   ARGV[3] channel   ARGV[4] outbox bound (MAXLEN)
-- ARGV[5..] per outbox in KEYS[2..]: the events it wants, 'o' (channel_occupied) and/or 'v' (channel_vacated)
-- Returns 0: the channel had a live subscriber already; 1: this is its first (occupied);
-- 2: its only subscribers had lapsed and were never announced gone: vacated, then occupied again.
-- Only the call that finds no live subscriber answers 1 or 2, so each change is announced once in the cluster.
-- Reads come first, and the add before the prune keeps the key alive (see presence_leave.lua on migrating slots).
local function announce(name, flag)
  -- The service's internal channels (#signed-in, #server-to-user-<id>) send no webhooks (the caller passes no outbox
  -- for them either).
  if string.sub(ARGV[3], 1, 1) == '#' then return end
  local event = cjson.encode({name = name, channel = ARGV[3]})
  for i = 2, #KEYS do
    if string.find(ARGV[3 + i], flag, 1, true) then
      redis.call('XADD', KEYS[i], 'MAXLEN', ARGV[4], '*', 'e', event)
    end
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total = redis.call('ZCARD', KEYS[1])
local lapsed = redis.call('ZCOUNT', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if lapsed > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
-- Kept well past the last expiry, so the settle (every few seconds) finds a dead worker's subscribers before Redis drops them.
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2 + 60000)
if total - lapsed > 0 then return 0 end
if lapsed > 0 then
  announce('channel_vacated', 'v')
  announce('channel_occupied', 'o')
  return 2
end
announce('channel_occupied', 'o')
return 1
