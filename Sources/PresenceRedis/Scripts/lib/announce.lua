-- The events of a member entering or leaving a chat room, included (`--#include announce`) by presence_join.lua and
-- presence_leave.lua, which publish them on one Redis in the same step as the change. The texts are the worker's
-- (ChatService.presenceUpdate and memberEvent, passed by RedisPresenceStore.announcement): nothing is built here.
-- From ARGV[first]: the Redis channel and text of `presence-update` for a public room, then the same for a private
-- room (its count `%d`, every other `%` doubled, for string.format), then the member event's channel and text.
-- `meta` is the room's HGETALL reply: only a chat room (an id, a name, type public or private, as Room(meta:) reads
-- it) is announced, on its type's channel, with `count` present. Nothing when ARGV[first] is absent or ''.
local function announce(meta, first, count)
  if not ARGV[first] or ARGV[first] == '' then return end
  local m = {}
  for i = 1, #meta, 2 do m[meta[i]] = meta[i + 1] end
  if not (m.id and m.name and (m.type == 'public' or m.type == 'private')) then return end
  local update = m.type == 'public' and first or first + 2
  redis.call('PUBLISH', ARGV[update], string.format(ARGV[update + 1], count))
  redis.call('PUBLISH', ARGV[first + 4], ARGV[first + 5])
end
