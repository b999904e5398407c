-- Deletes a room with everything in it: metadata, presence, join order, access list, history.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:joined   KEYS[4] room:{id}:access
-- KEYS[5] room:{id}:history   KEYS[6..] room:{id}:presence:<user> of each user in ARGV, in the same order
-- ARGV[1..] the members as the caller read them (ZRANGE room:{id}:members 0 -1)
-- Returns nil when the room did not exist; the error RETRY, changing nothing, when a member's presence key was not
-- passed (someone joined since the read: read the members again and re-run); else {meta..., {access members...}}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return nil
end
local presence = {}
for i = 6, #KEYS do presence[ARGV[i - 5]] = KEYS[i] end
local members = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, user in ipairs(members) do
  if not presence[user] then return redis.error_reply('RETRY no presence key passed for member ' .. user) end
end
local meta = redis.call('HGETALL', KEYS[1])
local access = redis.call('SMEMBERS', KEYS[4])
for _, user in ipairs(members) do
  redis.call('DEL', presence[user])
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return {meta, access}
