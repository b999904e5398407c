-- Drops swept entries from the sweeper's index, but only those still due: an entry a heartbeat has pushed
-- into the future meanwhile stays.
--
-- KEYS[1] presence:expiries   ARGV[1] now (ms, from expiry_due)   ARGV[2..] "<roomId>:<user>" entries
-- Returns how many entries were removed.
local removed = 0
local now = tonumber(ARGV[1])
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= now then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
