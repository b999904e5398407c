-- Settles rooms of one sweeper bucket after their claims (presence_sweep.lua): a room with members is checked again at
-- its next expiry; an empty room is checked again shortly, and dropped only when its last registration is older than
-- `keep` (a join registers before it runs, so a join that raced the claim is still found). A room whose lease was
-- changed meanwhile (a join registered an earlier check) keeps the earlier time.
--
-- KEYS[1] presence:rooms:{<tag>}   KEYS[2] presence:rooms:{<tag>}:touched
-- ARGV[1] keep (ms)   ARGV[2] recheck (ms)
-- ARGV[3..] per room, 4 values: room id, leasedUntil (from presence_due.lua), claim time (ms, from the claim),
--           next expiry ('' when the room had no member left)
--
-- Returns how many rooms were dropped.
-- Every read comes before the writes (see presence_leave.lua: a migrating slot refuses access to a key a write emptied).
local keep, recheck = tonumber(ARGV[1]), tonumber(ARGV[2])
local scores, touched = {}, {}
for i = 3, #ARGV, 4 do
  scores[i] = redis.call('ZSCORE', KEYS[1], ARGV[i])
  touched[i] = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
end
local dropped = 0
for i = 3, #ARGV, 4 do
  local room, leased, claimedAt, nextAt = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3]
  local score = scores[i]
  local unchanged = score and tonumber(score) == leased
  if nextAt ~= '' then
    if unchanged or not score then
      redis.call('ZADD', KEYS[1], tonumber(nextAt), room)
    else
      redis.call('ZADD', KEYS[1], 'LT', tonumber(nextAt), room)
    end
  elseif unchanged then
    if claimedAt - touched[i] > keep then
      redis.call('ZREM', KEYS[1], room)
      redis.call('HDEL', KEYS[2], room)
      dropped = dropped + 1
    else
      redis.call('ZADD', KEYS[1], claimedAt + recheck, room)
    end
  end
end
return dropped
