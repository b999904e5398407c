-- Present members in join order, one page at a time; expired members never show.
--
-- KEYS[1] room:{id}:members   KEYS[2] room:{id}:joined
-- ARGV[1] cursor join time (ms, '' for the first page)   ARGV[2] cursor user   ARGV[3] page size
--
-- Returns {now, nextCursorJoinedAt or '', nextCursorUser or '', {user, joinedAt, expiresAt, ...}}.
-- The cursor is the last (joinedAt, user) returned, so members who come and go between pages neither
-- repeat nor push others out: the order of the present ones never changes.
--#include clock
local now = redis_now()
local limit = tonumber(ARGV[3])
local cursorAt, cursorUser = ARGV[1], ARGV[2]
local min = '-inf'
if cursorAt ~= '' then min = cursorAt end
local page = {}
local found = 0
local lastAt, lastUser = '', ''
local offset = 0
local more = false
while found <= limit do
  local batch = redis.call('ZRANGEBYSCORE', KEYS[2], min, '+inf', 'WITHSCORES', 'LIMIT', offset, 200)
  if #batch == 0 then break end
  offset = offset + #batch / 2
  for i = 1, #batch, 2 do
    local user, at = batch[i], batch[i + 1]
    local after = cursorAt == '' or tonumber(at) > tonumber(cursorAt) or (tonumber(at) == tonumber(cursorAt) and user > cursorUser)
    if after then
      local expiry = redis.call('ZSCORE', KEYS[1], user)
      if expiry and tonumber(expiry) > now then
        if found == limit then
          more = true
          break
        end
        found = found + 1
        page[#page + 1] = user
        page[#page + 1] = at
        page[#page + 1] = expiry
        lastAt, lastUser = at, user
      end
    end
  end
  if more or #batch < 400 then break end
end
if not more then lastAt, lastUser = '', '' end
return {now, lastAt, lastUser, page}
