-- A WebSocket leaves a presence channel. The user leaves the room only when none of their sockets (on any
-- worker) is left; sockets of a dead worker stop being refreshed and lapse.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:joined   KEYS[4] room:{id}:presence:<user>
-- KEYS[5] room:{id}:sockets:<user>
-- ARGV[1] user   ARGV[2] socket id
-- Returns {left (1 = this call removed the user: announce it), userCount, {meta...}}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
local left = 0
if redis.call('ZCARD', KEYS[5]) == 0 then
  left = redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('DEL', KEYS[4], KEYS[5])
end
local count = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
return {left, count, redis.call('HGETALL', KEYS[1])}
