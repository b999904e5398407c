-- A recoverable channel's position, included (`--#include recovery`) by recovery_publish.lua.
-- KEYS[1] rec:{<channel>} is a hash {epoch, offset}: the channel's epoch and its latest offset; KEYS[2]
-- rec:{<channel>}:log is the stream of its retained events, entry id `<offset>-0`, fields m (the event's pub/sub text,
-- offset and epoch in it) and t (Redis's time, ms). A channel without an epoch (never used, its hash expired, or
-- Redis lost its data) starts a new one, `fresh`, at offset 0, with an empty log: a position of another epoch can
-- never be taken for one of this. Returns the epoch and the latest offset; the hash lives `ttl` seconds more.
local function recovery_position(fresh, ttl)
  local epoch = redis.call('HGET', KEYS[1], 'epoch')
  local offset = 0
  if not epoch then
    epoch = fresh
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  else
    offset = tonumber(redis.call('HGET', KEYS[1], 'offset')) or 0
  end
  redis.call('EXPIRE', KEYS[1], ttl)
  return epoch, offset
end
