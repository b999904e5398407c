-- The realtime hub's record of who is subscribed to a private room's or a ticket's channel (`private-room-<id>`,
-- `presence-room-<id>`) on any worker (#32, `message_unseen`): `room:{<id>}:watchers`, a sorted set of
-- `<user>\n<socket>` scored by expiry (ms, Redis's clock), refreshed with the worker's occupancy. Public rooms keep none.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:watchers   KEYS[3] room:{id}:unseen
-- ARGV[1] 'watch' | 'refresh' | 'unwatch'   ARGV[2] ttl (ms)   ARGV[3..] user, socket, user, socket, ...
--   watch: records the subscriptions and cancels each user's pending notice (they have seen the room): returns how
--          many notices were cancelled (suppressed)
--   refresh: records them again with a new expiry (a refresh after a lapse restores the entry); returns 0
--   unwatch: removes them; returns how many were there
--
-- redis-cli ZRANGE 'room:{ticket_T-1}:watchers' 0 -1 WITHSCORES
--#include clock
local mode, ttl = ARGV[1], tonumber(ARGV[2])
if mode == 'unwatch' then
  local removed = 0
  for i = 3, #ARGV - 1, 2 do removed = removed + redis.call('ZREM', KEYS[2], ARGV[i] .. '\n' .. ARGV[i + 1]) end
  return removed
end
local kind = redis.call('HGET', KEYS[1], 'type')
if not kind or kind == 'public' then return 0 end
local now = redis_now()
local suppressed = 0
for i = 3, #ARGV - 1, 2 do
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[i] .. '\n' .. ARGV[i + 1])
  if mode == 'watch' then suppressed = suppressed + redis.call('HDEL', KEYS[3], ARGV[i]) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('PEXPIRE', KEYS[2], ttl * 2 + 60000)
return suppressed
