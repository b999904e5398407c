-- Deletes a room with everything in it: metadata, presence, join order, access list, history.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:joined   KEYS[4] room:{id}:access
-- KEYS[5] room:{id}:history   KEYS[6] room:{id}:states
-- KEYS[7] room:{id}:presence:   the prefix of the members' native-TTL keys, not a key: the members are known only here,
--         so each one's key is built from it (`<prefix><user>`: the room's hash tag, so the same slot, and runs unchanged
--         on a cluster) and deleted, every member in `:members` (an expired one's key is gone already: harmless)
-- Returns nil when the room did not exist, else {meta..., {access members...}}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return nil
end
local meta = redis.call('HGETALL', KEYS[1])
local access = redis.call('SMEMBERS', KEYS[4])
local members = redis.call('ZRANGE', KEYS[2], 0, -1)
for i = 1, #members, 500 do
  local batch = {}
  for j = i, math.min(i + 499, #members) do batch[#batch + 1] = KEYS[7] .. members[j] end
  redis.call('DEL', unpack(batch))
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
return {meta, access}
