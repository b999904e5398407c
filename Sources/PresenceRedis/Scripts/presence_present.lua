-- Which of the given users are present in a room now, on Redis's clock (a watchlist's online members).
--
-- KEYS[1] room:{id}:members   zset: user -> presence expiry (ms)
-- ARGV    the users to look up
--
-- Returns the present ones, in the order given.
--#include clock
local now = redis_now()
local present = {}
for _, user in ipairs(ARGV) do
  local score = redis.call('ZSCORE', KEYS[1], user)
  if score and tonumber(score) > now then present[#present + 1] = user end
end
return present
