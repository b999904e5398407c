-- Closes a support room in one step: removes live state (presence, members), marks it closed and writes the
-- snapshot (metadata, the members present at close with their roles, closedAt, closedBy, message count, and from the
-- attendance: firstAgentAfterMs, agentPresentMs). Every member's presence ends in the attendance list (reason
-- `closed`; `expired` for an entry whose presence had run out and the sweeper had not claimed yet).
-- History, attendance and snapshot stay unless asked otherwise (the attendance goes with the history).
--
-- KEYS[1] meta   KEYS[2] members   KEYS[3] joined   KEYS[4] history   KEYS[5] snapshot (all room:{ticket_<id>}:...)
-- KEYS[6] room:{ticket_<id>}:states
-- KEYS[7] room:{ticket_<id>}:presence:   the prefix of the members' native-TTL keys, not a key: the members are known
--         only here, so each one's key is built from it (`<prefix><user>`: the room's hash tag, so the same slot, and runs
--         unchanged on a cluster) and deleted, every member in `:members` (an expired one's key is gone already: harmless)
-- KEYS[8] room:{ticket_<id>}:attendance   the ticket's attendance (lib/attendance.lua): every member's interval is
--         appended; read whole for the snapshot's agent times; deleted with the history
-- ARGV[1] closed by   ARGV[2] '1' to delete the history (and the attendance)   ARGV[3] '1' to delete the snapshot
-- ARGV[4] the attendance list's cap (SUPPORT_ATTENDANCE_LIMIT)
-- Returns nil when the room does not exist, 'ALREADY' when closed; else {snapshot JSON, {present users...}}.
-- Snapshot: firstAgentAfterMs = the first agent interval's start less createdAt (null when no agent ever came),
-- agentPresentMs = the length of the union of the agent intervals (time with at least one agent present, up to
-- closedAt), over every interval the list keeps (closes before a reopen included).
-- Every read comes before the writes (see presence_leave.lua: a migrating slot refuses access to a key a write emptied).
--#include clock
--#include attendance
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
if redis.call('HGET', KEYS[1], 'closed') == '1' then return 'ALREADY' end
local now = redis_now()
local present = {}
local members = {}
-- Each member's presence as it ends here: {user, state, join time, end, reason}.
local ending = {}
local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #entries, 2 do
  local user, score = entries[i], tonumber(entries[i + 1])
  local state = redis.call('HGET', KEYS[6], user)
  local joined = redis.call('ZSCORE', KEYS[3], user)
  if score > now then
    present[#present + 1] = user
    members[#members + 1] = {username = user, role = attendance_role(state)}
    ending[#ending + 1] = {user, state, joined, now, 'closed'}
  else
    ending[#ending + 1] = {user, state, joined, score, 'expired'}
  end
end
local meta = redis.call('HGETALL', KEYS[1])
local m = {}
for i = 1, #meta, 2 do m[meta[i]] = meta[i + 1] end
local kept = attendance_kept(KEYS[8], ARGV[4], meta)
local attended = kept and redis.call('LRANGE', KEYS[8], 0, -1) or {}
local messageCount = redis.call('XLEN', KEYS[4])
for i = 1, #entries, 2 do redis.call('DEL', KEYS[7] .. entries[i]) end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[6])
local extra = {}
for _, e in ipairs(ending) do
  if kept then attendance_record(KEYS[8], ARGV[4], e[1], e[2], e[3], e[4], e[5]) end
  extra[#extra + 1] = {role = attendance_role(e[2]), from = tonumber(e[3]) or e[4], to = e[4]}
end
local firstAgent, agentPresentMs = attendance_agents(attended, extra)
local createdAt = tonumber(m['createdAt'])
local firstAgentAfterMs = cjson.null
if firstAgent and createdAt then firstAgentAfterMs = math.max(0, firstAgent - createdAt) end
local snapshot = {
  roomId = m['id'], ticketId = m['ticketId'],
  metadata = {ticketId = m['ticketId'], priority = m['priority'] or cjson.null,
              assignedAgentId = m['assignedAgentId'] or cjson.null, status = m['status'] or 'open'},
  createdAt = createdAt, closedAt = now, closedBy = ARGV[1],
  messageCount = messageCount,
  firstAgentAfterMs = firstAgentAfterMs, agentPresentMs = agentPresentMs,
}
if #members > 0 then snapshot['members'] = members end
local encoded = cjson.encode(snapshot)
redis.call('HSET', KEYS[1], 'closed', '1', 'closedAt', now, 'closedBy', ARGV[1])
if ARGV[2] == '1' then redis.call('DEL', KEYS[4], KEYS[8]) end
if ARGV[3] == '1' then redis.call('DEL', KEYS[5]) else redis.call('SET', KEYS[5], encoded) end
return {encoded, present}
