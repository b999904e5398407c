-- Forgets one socket's subscription to a client channel, and announces the channel vacated when no live subscriber is
-- left, writing the webhook event to each receiver's outbox in the same step.
-- KEYS[1] pusher:channel:{<bucket tag>}:<channel>:sockets   KEYS[2..] outbox stream and byte count per receiver
-- (see occupancy_touch.lua)
-- ARGV[1] socket   ARGV[2] channel   ARGV[3] outbox bound (entries)   ARGV[4] outbox bound (bytes)
-- ARGV[5] largest event (bytes)   ARGV[6..] per receiver: 'o' and/or 'v'
-- Returns 1 when this call emptied the set (vacated), else 0.
-- BEGIN outbox functions (the same text in webhook_append.lua, webhook_ack.lua and the occupancy scripts)
-- The bytes an outbox entry whose event is `length` bytes of JSON counts for: an upper bound of what Redis 7's MEMORY
-- USAGE counts for it (default stream-node-max-bytes 4096 and stream-node-max-entries 100): the text and a quarter more
-- for the allocator's size classes, 64 for the entry's own fields, and its share of the radix-tree key of its listpack
-- node (800, shared by the entries the node holds).
local function outbox_cost(length)
  local per_node = math.min(100, math.max(1, math.floor(4096 / (length + 16))))
  return length + math.floor(length / 4) + 64 + math.ceil(800 / per_node)
end
-- The event text of an XRANGE entry {id, {field, value, ...}}.
local function outbox_text(entry)
  local fields = entry[2]
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'e' then return fields[i + 1] end
  end
  return ''
end
-- Appends `event` to the outbox stream `stream` (`counter`: the bytes its entries count for), then drops the oldest
-- entries while more than `maxlen` remain or they count for more than `maxbytes`. An event of more than `largest`
-- bytes is not written. Returns 1 when it was written, 0 when refused.
local function outbox_add(stream, counter, event, maxlen, maxbytes, largest)
  if #event > tonumber(largest) then return 0 end
  maxlen, maxbytes = tonumber(maxlen), tonumber(maxbytes)
  redis.call('XADD', stream, '*', 'e', event)
  local bytes = redis.call('INCRBY', counter, outbox_cost(#event))
  local length = redis.call('XLEN', stream)
  while length > 1 and (length > maxlen or bytes > maxbytes) do
    local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
    redis.call('XDEL', stream, oldest[1])
    bytes = redis.call('DECRBY', counter, outbox_cost(#outbox_text(oldest)))
    length = length - 1
  end
  return 1
end
-- END outbox functions
local function announce(name, flag)
  -- The service's internal channels (#signed-in, #server-to-user-<id>) send no webhooks (the caller passes no outbox
  -- for them either).
  if string.sub(ARGV[2], 1, 1) == '#' then return end
  local event = cjson.encode({name = name, channel = ARGV[2]})
  for r = 1, (#KEYS - 1) / 2 do
    if string.find(ARGV[5 + r], flag, 1, true) then
      outbox_add(KEYS[2 * r], KEYS[2 * r + 1], event, ARGV[3], ARGV[4], ARGV[5])
    end
  end
end
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
  announce('channel_vacated', 'v')
  return 1
end
if score then redis.call('ZREM', KEYS[1], ARGV[1]) end
if lapsed > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
return 0
