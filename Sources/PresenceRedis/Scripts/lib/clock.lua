-- Redis's clock, included (`--#include clock`) by every script that reads it, so that every time a script writes or
-- compares is the same reading of TIME in milliseconds. Returns the time now (ms), then TIME's own reply
-- {seconds, microseconds} for a script that needs its digits (a unique member name).
local function redis_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), t
end
