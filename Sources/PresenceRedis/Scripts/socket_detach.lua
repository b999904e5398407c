-- A WebSocket leaves a presence channel. The user leaves the room only when none of their sockets (on any
-- worker) is left; sockets of a dead worker stop being refreshed and lapse.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:joined   KEYS[4] room:{id}:states
-- KEYS[5] room:{id}:sockets:<user>   KEYS[6] room:{id}:presence:<user> (the native-TTL key, deleted with the member)
-- ARGV[1] user   ARGV[2] socket id
-- Returns {left (1 = this call removed the user: announce it), userCount, {meta...}}.
-- Every read comes before the writes (see presence_leave.lua: a migrating slot refuses access to a key a write emptied).
--#include clock
local now = redis_now()
local others = 0
for _, socket in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '(' .. now, '+inf')) do
  if socket ~= ARGV[2] then others = others + 1 end
end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
local count = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
local meta = redis.call('HGETALL', KEYS[1])
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
local left = 0
if others == 0 then
  left = redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
  redis.call('DEL', KEYS[5], KEYS[6])
  if score and tonumber(score) > now then count = count - 1 end
end
return {left, count, meta}
