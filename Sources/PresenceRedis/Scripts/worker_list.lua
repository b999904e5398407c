-- The workers alive now (announced within their ttl, on Redis's clock), with their announcements. Reads only.
-- KEYS[1] workers:{ops}:alive   KEYS[2] workers:{ops}:info
-- Returns {id1, info1, id2, info2, ...} (info false when missing).
--#include clock
local now = redis_now()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
if #ids == 0 then return {} end
local infos = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = infos[i]
end
return out
