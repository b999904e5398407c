-- One bucket of a lease index, on Redis's clock: a sorted set of ids (rooms) -> when a watcher looks at each next (ms).
-- Entries are hints: whoever looks decides from the room's own state. Used by the unattended tickets' index
-- (`support:waiting:{<tag>}`, see support_waiting.lua; `+inf` once an episode's notice went out: only the queue reads
-- it then) and the unseen messages' index (`unseen:due:{<tag>}`, see unseen_claim.lua).
--
-- KEYS[1] the bucket's sorted set
-- ARGV[1] 'due': ARGV[2] batch size, ARGV[3] lease (ms). Leases the ids whose time has come (pushed `lease` ms on, so
--         another worker's watcher does not take them meanwhile; what the watcher does must stay exactly-once either
--         way: only the step on the room's own slot decides). Returns {id, leasedUntil, ...}.
-- ARGV[1] 'register': ARGV[2] id, ARGV[3] delay (ms). Before a change that may need a look: the id is due at
--         now + delay at the latest (ZADD LT: an earlier time stays). Returns 1.
-- ARGV[1] 'settle': ARGV[2] id, ARGV[3] the score it was leased at, ARGV[4] the next time (ms, or 'inf'), or
--         'drop'. Changes the entry only while it still has the leased score: a change that registered or timed the
--         id since wins. Returns 1 when changed.
--
-- redis-cli ZRANGE 'support:waiting:{s0.0}' 0 -1 WITHSCORES
--#include clock
--#include lease
if ARGV[1] == 'due' then
  local _, out = lease_due(KEYS[1], ARGV[2], ARGV[3])
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
