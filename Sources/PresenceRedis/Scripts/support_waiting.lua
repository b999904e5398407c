-- A support ticket's waiting episode (#32, unattended tickets), decided from the ticket's state as it is now, in one
-- step on the ticket's slot. The ticket is *unattended* while it is open (not closed), a present member has the role
-- `customer` and no present member has the role `agent` (observers do not count; admins join as agents); "present" is
-- a `:members` score above Redis's clock, so a presence that ran out counts as gone before the sweeper claims it.
-- The episode is the hash `room:{ticket_<id>}:waiting` {since (ms, Redis's clock), notified ('0' | '1')}: this script
-- starts it (since = now) when the rule holds and there is none, and deletes it when the rule stops holding. It runs
-- after every presence change of a ticket (join, leave, expiry, close: mode `sync`), from the watcher for a ticket
-- whose notice is due (mode `notify`), and for the queue (mode `read`, which changes nothing). Being derived from the
-- present state each time, a call a dead worker never made is made up by the next one.
--
-- KEYS[1] room:{ticket_<id>}:meta   KEYS[2] room:{ticket_<id>}:members   KEYS[3] room:{ticket_<id>}:states
-- KEYS[4] room:{ticket_<id>}:waiting
-- ARGV[1] mode: 'sync' | 'notify' | 'read'
-- ARGV[2] SUPPORT_UNATTENDED_AFTER in ms: in `notify`, the episode is flipped to notified (exactly once: only the
--         call that finds notified = '0' and since + after <= now does it) and the answer says so
--
-- Returns {status, since, waitMs, notified, customer, assignedAgentId, now} where status is
--   'none'     no episode, and none starts (read: the rule does not hold)
--   'started'  an episode started here (sync, notify)
--   'waiting'  an episode goes on (notified says whether its notice went out)
--   'notify'   notify only: this call flipped notified: send `ticket-unattended` (exactly once per episode)
--   'attended' the episode ended here because an agent is present: send `ticket-attended` with waitMs
--   'ended'    the episode ended here for another reason (the customer is gone, the ticket closed or is gone)
-- since and waitMs are 0 with 'none'; customer and assignedAgentId are '' when the ticket has none.
--
-- redis-cli --eval support_waiting.lua 'room:{ticket_T-1}:meta' 'room:{ticket_T-1}:members' \
--   'room:{ticket_T-1}:states' 'room:{ticket_T-1}:waiting' , read 60000
--#include clock
local now = redis_now()
local mode, after = ARGV[1], tonumber(ARGV[2]) or 60000
local meta = {}
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do meta[fields[i]] = fields[i + 1] end
local customer, agent = false, false
if meta['type'] == 'support' and meta['closed'] ~= '1' then
  local present = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf')
  for _, user in ipairs(present) do
    local role = 'customer'
    local state = redis.call('HGET', KEYS[3], user)
    if state then
      local ok, decoded = pcall(cjson.decode, state)
      if ok and type(decoded) == 'table' and type(decoded['role']) == 'string' then role = decoded['role'] end
    end
    if role == 'customer' then customer = true elseif role == 'agent' then agent = true end
  end
end
local holds = customer and not agent
local since = tonumber(redis.call('HGET', KEYS[4], 'since'))
local notified = redis.call('HGET', KEYS[4], 'notified') or '0'
local who, assigned = meta['customer'] or '', meta['assignedAgentId'] or ''
local function answer(status, from, flag)
  local wait = 0
  if from then wait = math.max(0, now - from) end
  return {status, from or 0, wait, tonumber(flag) or 0, who, assigned, now}
end
if not holds then
  if not since then return answer('none', nil, 0) end
  if mode == 'read' then return answer('none', nil, 0) end
  redis.call('DEL', KEYS[4])
  if agent and meta['closed'] ~= '1' then return answer('attended', since, notified) end
  return answer('ended', since, notified)
end
if not since then
  if mode == 'read' then return answer('none', nil, 0) end
  redis.call('HSET', KEYS[4], 'since', now, 'notified', '0')
  return answer('started', now, 0)
end
if mode == 'notify' and notified ~= '1' and since + after <= now then
  redis.call('HSET', KEYS[4], 'notified', '1')
  return answer('notify', since, 1)
end
return answer('waiting', since, notified)
