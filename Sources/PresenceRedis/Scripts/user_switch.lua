-- A user's own bookkeeping for a presence switch, in one call: the set of rooms the user is present in moves
-- from the previous room to the next, and lastActive becomes Redis's clock now (if the user exists).
--
-- KEYS[1] user:{name}            hash: the user (lastActive)
-- KEYS[2] user:{name}:present    set: rooms the user is present in
-- ARGV[1] previous room id ('' for none)   ARGV[2] next room id ('' for none)
--
-- Returns lastActive, or 0 when the user does not exist (nothing is touched then but the set).
--
-- redis-cli --eval user_switch.lua 'user:{alice}' 'user:{alice}:present' , general random
if ARGV[1] ~= '' then redis.call('SREM', KEYS[2], ARGV[1]) end
if ARGV[2] ~= '' then redis.call('SADD', KEYS[2], ARGV[2]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'lastActive', now)
return now
