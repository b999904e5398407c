-- A support ticket's attendance, included (`--#include attendance`) by every script that removes a member from
-- `room:{<id>}:members` (presence_leave.lua, presence_sweep.lua, socket_detach.lua, support_close.lua) and by
-- presence_join.lua (a join over an expired entry the sweeper has not claimed yet ends that presence). Each presence in
-- a ticket that ends becomes one interval, appended to the list `room:{ticket_<id>}:attendance` (the room's hash tag,
-- so the same slot) in the same step as the removal, so it is written exactly once:
--   {"user":"<name>","role":"<role>","from":<join time>,"to":<end>,"reason":"left"|"expired"|"closed"}
-- (ms on Redis's clock). `from` is the member's score in `room:{<id>}:joined`; `to` is now for `left` and `closed`,
-- and for `expired` the member's expiry (its score in `:members`, when the presence really ended, not when the sweeper
-- got to it). `role` is the member's role in `room:{<id>}:states` when the interval ends (`customer` when none).
-- Only support rooms (meta `type` = `support`) keep attendance: the scripts are shared with chat rooms and presence
-- channels, which record nothing (the workers pass the key only for support rooms; the type is checked here too). The
-- list keeps the newest `limit` intervals (SUPPORT_ATTENDANCE_LIMIT, `LTRIM`). A caller that passes no attendance key
-- (or no limit) records nothing.

-- The role in a member's state JSON (`room:{<id>}:states`), 'customer' when there is none.
local function attendance_role(state)
  if state then
    local ok, decoded = pcall(cjson.decode, state)
    if ok and type(decoded) == 'table' and type(decoded['role']) == 'string' then return decoded['role'] end
  end
  return 'customer'
end

-- Whether a room keeps attendance: `key` (the list, from KEYS[]) and `limit` (from ARGV) were given and `meta`, the
-- room's HGETALL reply, says it is a support room.
local function attendance_kept(key, limit, meta)
  if not key or not tonumber(limit) then return false end
  for i = 1, #meta, 2 do
    if meta[i] == 'type' then return meta[i + 1] == 'support' end
  end
  return false
end

-- One interval's JSON, its fields always in the same order (what `LRANGE` shows).
local function attendance_text(user, role, from, to, reason)
  return '{"user":' .. cjson.encode(user) .. ',"role":' .. cjson.encode(role) .. ',"from":' ..
    string.format('%d', from) .. ',"to":' .. string.format('%d', to) .. ',"reason":"' .. reason .. '"}'
end

-- Appends one ended presence to the list `key` and keeps the newest `limit` intervals. `joined` is the member's join
-- time (its `:joined` score, a string or nil when missing: then the interval starts where it ends), `state` its state
-- JSON (or nil).
local function attendance_record(key, limit, user, state, joined, to, reason)
  local from = tonumber(joined) or to
  redis.call('RPUSH', key, attendance_text(user, attendance_role(state), from, to, reason))
  redis.call('LTRIM', key, -tonumber(limit), -1)
end

-- What the close snapshot says of the agents, from every agent interval: the list's `entries` (LRANGE) and `extra`
-- ({from, to, role} tables of intervals not in the list yet). Returns the earliest agent start (nil when no agent ever
-- came) and the length of the union of the agents' intervals (ms: time with at least one agent present).
local function attendance_agents(entries, extra)
  local spans = {}
  for _, text in ipairs(entries) do
    if string.find(text, '"role":"agent"', 1, true) then
      local ok, decoded = pcall(cjson.decode, text)
      if ok and type(decoded) == 'table' and decoded['role'] == 'agent' and tonumber(decoded['from'])
          and tonumber(decoded['to']) and tonumber(decoded['to']) >= tonumber(decoded['from']) then
        spans[#spans + 1] = {tonumber(decoded['from']), tonumber(decoded['to'])}
      end
    end
  end
  for _, span in ipairs(extra) do
    if span.role == 'agent' and span.to >= span.from then spans[#spans + 1] = {span.from, span.to} end
  end
  if #spans == 0 then return nil, 0 end
  table.sort(spans, function(a, b) return a[1] < b[1] end)
  local first, total = spans[1][1], 0
  local startAt, endAt = spans[1][1], spans[1][2]
  for i = 2, #spans do
    if spans[i][1] > endAt then
      total = total + (endAt - startAt)
      startAt, endAt = spans[i][1], spans[i][2]
    elseif spans[i][2] > endAt then
      endAt = spans[i][2]
    end
  end
  return first, total + (endAt - startAt)
end
