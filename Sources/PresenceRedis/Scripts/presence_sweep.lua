-- Claims the members of one room whose presence expired. Run by every worker's sweeper; ZREM makes the
-- claim atomic, so each expiry is claimed (and announced) by exactly one worker.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:joined   KEYS[4] room:{id}:states
-- KEYS[5] room:{id}:presence:   the prefix of the members' native-TTL keys, not a key: the claimed users are known only
--         here, so each one's key is built from it (`<prefix><user>`: the room's hash tag, so the same slot, and runs
--         unchanged on a cluster) and deleted; a key that already expired by itself is gone, and deleting it is harmless
-- ARGV: none
--
-- Returns {userCount, {claimed users...}, {meta...}, now, next expiry ('' when no member is left)}.
-- Every read comes before the writes (see presence_leave.lua: a migrating slot refuses access to a key a write emptied);
-- removing expired members changes neither the count of the others nor the earliest of them.
--#include clock
local now = redis_now()
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
local count = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
local first = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local meta = redis.call('HGETALL', KEYS[1])
-- States are kept only while not '{}': once the last is removed the hash is gone, and is not touched again.
local stated = redis.call('HLEN', KEYS[4])
local nextAt = ''
if first[2] then nextAt = first[2] end
local claimed = {}
for _, user in ipairs(expired) do
  if redis.call('ZREM', KEYS[2], user) == 1 then
    redis.call('ZREM', KEYS[3], user)
    if stated > 0 then stated = stated - redis.call('HDEL', KEYS[4], user) end
    redis.call('DEL', KEYS[5] .. user)
    claimed[#claimed + 1] = user
  end
end
return {count, claimed, meta, now, nextAt}
