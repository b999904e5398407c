-- Which of the given users are present in a room now, on Redis's clock (a watchlist's online members).
--
-- KEYS[1] room:{id}:members   zset: user -> presence expiry (ms)
-- ARGV    the users to look up
--
-- Returns the present ones, in the order given.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local present = {}
for _, user in ipairs(ARGV) do
  local score = redis.call('ZSCORE', KEYS[1], user)
  if score and tonumber(score) > now then present[#present + 1] = user end
end
return present
