-- Settles a client channel whose entry in the live-channel index lapsed: its subscribers' worker died or stalled.
-- KEYS[1] pusher:channel:{<channel>}:sockets
-- Returns 1 when every subscriber had lapsed and this call emptied the set (channel_vacated), else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total = redis.call('ZCARD', KEYS[1])
if total == 0 then return 0 end
local lapsed = redis.call('ZCOUNT', KEYS[1], '-inf', now)
if lapsed == total then
  redis.call('DEL', KEYS[1])
  return 1
end
if lapsed > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
return 0
