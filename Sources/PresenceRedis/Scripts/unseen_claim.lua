-- The unseen watcher's step on one room (#32, `message_unseen`), on the room's slot.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:watchers   KEYS[4] room:{id}:unseen
-- KEYS[5] room:{id}:unseen:sending   hash: member -> a claimed notice (unseen_post.lua's JSON plus `lease`, ms)
--
-- ARGV[1] 'claim', ARGV[2] lease (ms). Each pending notice whose time has come is decided now: a member who has seen
--         the room meanwhile (lib/unseen.lua) has it dropped (suppressed); otherwise it moves to `:sending`, leased to
--         this caller, which sends it (unseen_send.lua, idempotent per notice) and then calls 'done'. A claimed notice
--         whose lease ran out (its worker died between the claim and 'done') is handed out again as it was: it was
--         decided already, and the send does not repeat what went out. A room that is gone drops everything.
--         Returns {{member, notice JSON, ...}, suppressed, next} where next is when the room needs a look again (the
--         earliest pending due time or claimed lease; 0: nothing is left).
-- ARGV[1] 'next': changes nothing; returns {{}, 0, next} (the watcher's check after settling the index: a post that
--         came in while the room was leased is looked at in time).
-- ARGV[1] 'done', ARGV[2] member, ARGV[3] the notice's id. Removes the claimed notice if it is still that one.
--         Returns 1 when removed.
--
-- redis-cli HGETALL 'room:{ticket_T-1}:unseen:sending'
--#include clock
--#include unseen
if ARGV[1] == 'done' then
  local text = redis.call('HGET', KEYS[5], ARGV[2])
  if not text or cjson.decode(text).id ~= ARGV[3] then return 0 end
  return redis.call('HDEL', KEYS[5], ARGV[2])
end
local now = redis_now()
if ARGV[1] == 'next' then
  local next = 0
  for _, key in ipairs({KEYS[4], KEYS[5]}) do
    local values = redis.call('HVALS', key)
    for _, text in ipairs(values) do
      local entry = cjson.decode(text)
      local t = entry.lease or entry.due
      if next == 0 or t < next then next = t end
    end
  end
  return {{}, 0, next}
end
local lease = tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then
  local dropped = redis.call('HLEN', KEYS[4])
  redis.call('DEL', KEYS[4], KEYS[5])
  return {{}, dropped, 0}
end
local out, suppressed, next = {}, 0, 0
local function later(t)
  if next == 0 or t < next then next = t end
end
local pending = redis.call('HGETALL', KEYS[4])
local watching = nil
for i = 1, #pending, 2 do
  local user, entry = pending[i], cjson.decode(pending[i + 1])
  if entry.due <= now then
    watching = watching or unseen_watching(KEYS[3], now)
    redis.call('HDEL', KEYS[4], user)
    if watching[user] or unseen_present(KEYS[2], user, now) then
      suppressed = suppressed + 1
    elseif redis.call('HEXISTS', KEYS[5], user) == 0 then
      entry.lease = now + lease
      local text = cjson.encode(entry)
      redis.call('HSET', KEYS[5], user, text)
      out[#out + 1] = user
      out[#out + 1] = text
      later(entry.lease)
    else
      -- The member's previous notice is still being sent: this one waits for the next look.
      redis.call('HSET', KEYS[4], user, pending[i + 1])
      later(now + 100)
    end
  else
    later(entry.due)
  end
end
local sending = redis.call('HGETALL', KEYS[5])
for i = 1, #sending, 2 do
  local user, entry = sending[i], cjson.decode(sending[i + 1])
  if entry.lease <= now then
    entry.lease = now + lease
    local text = cjson.encode(entry)
    redis.call('HSET', KEYS[5], user, text)
    out[#out + 1] = user
    out[#out + 1] = text
    later(entry.lease)
  elseif entry.lease ~= nil then
    later(entry.lease)
  end
end
if next > 0 then redis.call('PEXPIRE', KEYS[5], 86400000 + lease) end
return {out, suppressed, next}
