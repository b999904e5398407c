-- A message was posted in a private room or a support ticket (#32, `message_unseen`): each member who has not seen it
-- (lib/unseen.lua: neither present nor subscribed, on any worker) gets a pending notice in `room:{<id>}:unseen`, due
-- UNSEEN_GRACE_MS later. At most one is pending per member: a later message counts it up (`count`, `lastId`,
-- `lastAt`) and keeps its due time. The author is never notified. The caller registered the room in the unseen index
-- (lease_index.lua, `unseen:due:{…}`) before this runs, so a worker that dies here leaves nothing unwatched.
--
-- KEYS[1] room:{id}:meta   KEYS[2] room:{id}:members   KEYS[3] room:{id}:watchers   KEYS[4] room:{id}:unseen
-- ARGV[1] message id   ARGV[2] its time (ms)   ARGV[3] its author   ARGV[4] UNSEEN_GRACE_MS   ARGV[5..] the members
--
-- A pending notice (the hash's value per member, JSON): {id, at, from: the first unseen message, its time and author;
-- lastId, lastAt: the latest one; count; due: when the watcher sends it (ms, Redis's clock)}.
-- Returns {pending: members with a pending notice after this, due: the earliest of their due times (0: none)}.
--
-- redis-cli HGETALL 'room:{ticket_T-1}:unseen'
--#include clock
--#include unseen
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
local now = redis_now()
local id, at, author, grace = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local watching = unseen_watching(KEYS[3], now)
local pending, due, done = 0, 0, {}
for i = 5, #ARGV do
  local user = ARGV[i]
  if user ~= author and not done[user] and not watching[user] and not unseen_present(KEYS[2], user, now) then
    done[user] = true
    local text = redis.call('HGET', KEYS[4], user)
    local entry
    if text then
      entry = cjson.decode(text)
      entry.count = entry.count + 1
      entry.lastId, entry.lastAt = id, at
    else
      entry = {id = id, at = at, from = author, lastId = id, lastAt = at, count = 1, due = now + grace}
    end
    redis.call('HSET', KEYS[4], user, cjson.encode(entry))
    pending = pending + 1
    if due == 0 or entry.due < due then due = entry.due end
  end
end
-- Kept a day past the grace: a notice no watcher sent by then (every worker down) goes with it.
if pending > 0 then redis.call('PEXPIRE', KEYS[4], grace + 86400000) end
return {pending, due}
