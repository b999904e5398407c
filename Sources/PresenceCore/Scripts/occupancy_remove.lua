-- Forgets one socket's subscription to a client channel, and says whether the channel became vacated.
-- KEYS[1] pusher:channel:{<channel>}:sockets   ARGV[1] socket
-- Returns 1 when no live subscriber is left and this call emptied the set (channel_vacated), else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total = redis.call('ZCARD', KEYS[1])
if total == 0 then return 0 end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local lapsed = redis.call('ZCOUNT', KEYS[1], '-inf', now)
local live = total - lapsed
if score and tonumber(score) > now then live = live - 1 end
if live == 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
if score then redis.call('ZREM', KEYS[1], ARGV[1]) end
if lapsed > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
return 0
