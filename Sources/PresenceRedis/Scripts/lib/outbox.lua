-- The webhook outbox's functions, included (`--#include outbox`) by every script that writes or acknowledges outbox
-- entries: webhook_append.lua, webhook_ack.lua and the occupancy scripts. Scripts.swift puts this text in place of the
-- include line when it loads them, so the byte accounting is written once (and matches WebhookSettings.storedSize).
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
-- The occupancy scripts' webhook event `event` (its text as the worker wrote it; '' for none) appended to the outbox of
-- each receiver in KEYS[2..] (stream, then byte count, per receiver) whose flags ARGV[bounds + 2 + r] hold `flag`
-- ('o' occupied, 'v' vacated), within the bounds ARGV[bounds..bounds + 2] (entries, bytes, largest event).
local function outbox_announce(event, flag, bounds)
  if event == '' then return end
  for r = 1, (#KEYS - 1) / 2 do
    if string.find(ARGV[bounds + 2 + r], flag, 1, true) then
      outbox_add(KEYS[2 * r], KEYS[2 * r + 1], event, ARGV[bounds], ARGV[bounds + 1], ARGV[bounds + 2])
    end
  end
end
