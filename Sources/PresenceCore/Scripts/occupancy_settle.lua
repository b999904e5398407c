-- Settles a client channel whose entry in the live-channel index lapsed (its subscribers' worker died or stalled):
-- when every subscription lapsed, the channel is vacated, and the webhook event written to each receiver's outbox in
-- the same step.
-- KEYS[1] pusher:channel:{<bucket tag>}:<channel>:sockets   KEYS[2..] outbox streams (see occupancy_touch.lua)
-- ARGV[1] channel   ARGV[2] outbox bound (MAXLEN)   ARGV[3..] per outbox: 'o' and/or 'v'
-- Returns 1 when this call emptied the set (vacated), else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total = redis.call('ZCARD', KEYS[1])
if total == 0 then return 0 end
local lapsed = redis.call('ZCOUNT', KEYS[1], '-inf', now)
if lapsed == total then
  redis.call('DEL', KEYS[1])
  local event = cjson.encode({name = 'channel_vacated', channel = ARGV[1]})
  -- No webhook for the service's internal channels (#signed-in, #server-to-user-<id>).
  local internal = string.sub(ARGV[1], 1, 1) == '#'
  for i = 2, internal and 0 or #KEYS do
    if string.find(ARGV[1 + i], 'v', 1, true) then
      redis.call('XADD', KEYS[i], 'MAXLEN', ARGV[2], '*', 'e', event)
    end
  end
  return 1
end
if lapsed > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
return 0
