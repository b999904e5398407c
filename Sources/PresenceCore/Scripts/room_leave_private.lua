-- A member leaves a private room for good; the room goes when fewer than 2 members remain.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:joined   KEYS[4] room:{id}:access
-- KEYS[5] room:{id}:history   KEYS[6..] room:{id}:presence:<user> of each user in ARGV[2..], in the same order
-- ARGV[1] user   ARGV[2..] the user and the members as the caller read them (ZRANGE room:{id}:members 0 -1)
-- Returns nil when the room does not exist; the error RETRY, changing nothing, when the presence key of the user or
-- of a member was not passed (someone joined since the read: read the members again and re-run); else {deleted (1|0),
-- meta..., {access members before...}, userCount, wasPresent (1|0)}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return nil
end
local presence = {}
for i = 6, #KEYS do presence[ARGV[i - 4]] = KEYS[i] end
if not presence[ARGV[1]] then return redis.error_reply('RETRY no presence key passed for ' .. ARGV[1]) end
for _, user in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if not presence[user] then return redis.error_reply('RETRY no presence key passed for member ' .. user) end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Every read comes before the writes (see presence_leave.lua: a migrating slot refuses access to a key a write emptied).
local meta = redis.call('HGETALL', KEYS[1])
local before = redis.call('SMEMBERS', KEYS[4])
local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local others, count, access = {}, 0, 0
for i = 1, #entries, 2 do
  if entries[i] ~= ARGV[1] then
    others[#others + 1] = entries[i]
    if tonumber(entries[i + 1]) > now then count = count + 1 end
  end
end
for _, user in ipairs(before) do
  if user ~= ARGV[1] then access = access + 1 end
end
redis.call('SREM', KEYS[4], ARGV[1])
local wasPresent = redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', presence[ARGV[1]])
if access < 2 then
  for _, user in ipairs(others) do
    redis.call('DEL', presence[user])
  end
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  return {1, meta, before, 0, wasPresent}
end
return {0, meta, before, count, wasPresent}
