-- Live members of an expiring set (expiry ahead of Redis's clock), with their count.
-- KEYS[1] the sorted set
-- Returns {count, {members...}}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
return {#members, members}
