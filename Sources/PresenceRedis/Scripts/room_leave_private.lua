-- A member leaves a private room for good; the room goes when fewer than 2 members remain.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:joined   KEYS[4] room:{id}:access
-- KEYS[5] room:{id}:history   KEYS[6] room:{id}:states
-- KEYS[7] room:{id}:presence:<user>   the leaving user's native-TTL key, deleted
-- KEYS[8] room:{id}:presence:   the prefix of the members' native-TTL keys, not a key: when the room goes, each other
--         member's key is built from it (`<prefix><user>`: the room's hash tag, so the same slot, and runs unchanged on a
--         cluster) and deleted, every member in `:members` (an expired one's key is gone already: harmless)
-- ARGV[1] user
-- Returns nil when the room does not exist; else {deleted (1|0), meta..., {access members before...}, userCount,
-- wasPresent (1|0)}.
--#include clock
if redis.call('EXISTS', KEYS[1]) == 0 then
  return nil
end
local now = redis_now()
-- Every read comes before the writes (see presence_leave.lua: a migrating slot refuses access to a key a write emptied).
local meta = redis.call('HGETALL', KEYS[1])
local before = redis.call('SMEMBERS', KEYS[4])
local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local count, access = 0, 0
for i = 1, #entries, 2 do
  if entries[i] ~= ARGV[1] and tonumber(entries[i + 1]) > now then count = count + 1 end
end
local stated = redis.call('HEXISTS', KEYS[6], ARGV[1])
for _, user in ipairs(before) do
  if user ~= ARGV[1] then access = access + 1 end
end
redis.call('SREM', KEYS[4], ARGV[1])
local wasPresent = redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[7])
if access < 2 then
  for i = 1, #entries, 2 do
    if entries[i] ~= ARGV[1] then redis.call('DEL', KEYS[8] .. entries[i]) end
  end
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
  return {1, meta, before, 0, wasPresent}
end
if stated == 1 then redis.call('HDEL', KEYS[6], ARGV[1]) end
return {0, meta, before, count, wasPresent}
