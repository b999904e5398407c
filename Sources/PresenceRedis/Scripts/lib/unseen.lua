-- Unseen messages' shared functions (#32, `message_unseen`), included (`--#include unseen`) by unseen_post.lua and
-- unseen_claim.lua after `clock`. A member of a private room or a support ticket has *seen* the room's messages, as far
-- as this service can tell, while they are present in it (a `room:{<id>}:members` score above Redis's clock) or have a
-- live socket subscribed to its channel on any worker (a `room:{<id>}:watchers` entry `<user>\n<socket>` scored above
-- it; the realtime hub writes them, see unseen_watch.lua).

-- The users with a live subscription to the room's channel (a set: user -> true); lapsed entries are skipped (the
-- watch script prunes them).
local function unseen_watching(watchers, now)
  local users = {}
  for _, entry in ipairs(redis.call('ZRANGEBYSCORE', watchers, '(' .. now, '+inf')) do
    local cut = string.find(entry, '\n', 1, true)
    if cut then users[string.sub(entry, 1, cut - 1)] = true end
  end
  return users
end

-- Whether `user` is present in the room now.
local function unseen_present(members, user, now)
  local score = redis.call('ZSCORE', members, user)
  return score ~= false and score ~= nil and tonumber(score) > now
end
