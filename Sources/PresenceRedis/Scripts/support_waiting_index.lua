-- One bucket of the waiting index (unattended tickets, see support_waiting.lua), on Redis's clock.
--
-- KEYS[1] support:waiting:{<tag>}   zset: ticket room id -> when the watcher looks at it next (ms; +inf once the
--         episode's notice went out: only the queue reads it then)
-- ARGV[1] 'due': ARGV[2] batch size, ARGV[3] lease (ms). Leases the tickets whose time has come (pushed `lease` ms on,
--         so another worker's watcher does not take them meanwhile; the notice stays exactly-once either way: only
--         the step that flips `notified` sends it). Returns {room, leasedUntil, ...}.
-- ARGV[1] 'register': ARGV[2] room, ARGV[3] SUPPORT_UNATTENDED_AFTER (ms). Before a presence change's waiting step:
--         the ticket is due at now + after at the latest (ZADD LT: an earlier time stays). Returns 1.
-- ARGV[1] 'settle': ARGV[2] room, ARGV[3] the score it was leased at, ARGV[4] the next time (ms, or 'inf'), or
--         'drop'. Changes the entry only while it still has the leased score: a sync that registered or timed the
--         ticket since (a new episode) wins. Returns 1 when changed.
--
-- redis-cli ZRANGE 'support:waiting:{s0.0}' 0 -1 WITHSCORES
--#include clock
if ARGV[1] == 'due' then
  local now = redis_now()
  local rooms = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
  local until_ = now + tonumber(ARGV[3])
  local out = {}
  for _, room in ipairs(rooms) do
    redis.call('ZADD', KEYS[1], until_, room)
    out[#out + 1] = room
    out[#out + 1] = until_
  end
  return out
end
if ARGV[1] == 'register' then
  redis.call('ZADD', KEYS[1], 'LT', redis_now() + tonumber(ARGV[3]), ARGV[2])
  return 1
end
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not score or tonumber(score) ~= tonumber(ARGV[3]) then return 0 end
if ARGV[4] == 'drop' then
  redis.call('ZREM', KEYS[1], ARGV[2])
else
  redis.call('ZADD', KEYS[1], ARGV[4] == 'inf' and '+inf' or ARGV[4], ARGV[2])
end
return 1
