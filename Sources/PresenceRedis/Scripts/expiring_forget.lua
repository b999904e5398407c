-- Removes members of an expiring set whose expiry is still the one read (not refreshed since).
-- KEYS[1] the sorted set   ARGV member, expiry, member, expiry, ...
-- Returns how many were removed.
local removed = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= tonumber(ARGV[i + 1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
