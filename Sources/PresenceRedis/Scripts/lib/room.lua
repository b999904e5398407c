-- The check of a room a member enters or writes to, included (`--#include room`) by presence_join.lua and
-- history_append.lua: the error NOROOM when the room's hash `meta` does not exist, CLOSED when it is a closed support
-- room, else nil.
local function room_refusal(meta)
  if redis.call('EXISTS', meta) == 0 then
    return redis.error_reply('NOROOM room does not exist')
  end
  if redis.call('HGET', meta, 'closed') == '1' then
    return redis.error_reply('CLOSED room is closed')
  end
  return nil
end
