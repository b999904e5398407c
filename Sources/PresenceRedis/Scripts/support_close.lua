-- Closes a support room in one step: removes live state (presence, members), marks it closed and writes the
-- snapshot (metadata, the members present at close with their roles, closedAt, closedBy, message count).
-- History and snapshot stay unless asked otherwise.
--
-- KEYS[1] meta   KEYS[2] members   KEYS[3] joined   KEYS[4] history   KEYS[5] snapshot (all room:{ticket_<id>}:...)
-- KEYS[6] room:{ticket_<id>}:states
-- KEYS[7] room:{ticket_<id>}:presence:   the prefix of the members' native-TTL keys, not a key: the members are known
--         only here, so each one's key is built from it (`<prefix><user>`: the room's hash tag, so the same slot, and runs
--         unchanged on a cluster) and deleted, every member in `:members` (an expired one's key is gone already: harmless)
-- ARGV[1] closed by   ARGV[2] '1' to delete the history   ARGV[3] '1' to delete the snapshot
-- Returns nil when the room does not exist, 'ALREADY' when closed; else {snapshot JSON, {present users...}}.
--#include clock
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
if redis.call('HGET', KEYS[1], 'closed') == '1' then return 'ALREADY' end
local now = redis_now()
local present = {}
local members = {}
local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #entries, 2 do
  local user = entries[i]
  if tonumber(entries[i + 1]) > now then
    local state = redis.call('HGET', KEYS[6], user)
    local role = 'customer'
    if state then
      local ok, decoded = pcall(cjson.decode, state)
      if ok and type(decoded) == 'table' and decoded['role'] then role = decoded['role'] end
    end
    present[#present + 1] = user
    members[#members + 1] = {username = user, role = role}
  end
end
for i = 1, #entries, 2 do redis.call('DEL', KEYS[7] .. entries[i]) end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[6])
local meta = redis.call('HGETALL', KEYS[1])
local m = {}
for i = 1, #meta, 2 do m[meta[i]] = meta[i + 1] end
local snapshot = {
  roomId = m['id'], ticketId = m['ticketId'],
  metadata = {ticketId = m['ticketId'], priority = m['priority'] or cjson.null,
              assignedAgentId = m['assignedAgentId'] or cjson.null, status = m['status'] or 'open'},
  createdAt = tonumber(m['createdAt']), closedAt = now, closedBy = ARGV[1],
  messageCount = redis.call('XLEN', KEYS[4]),
}
if #members > 0 then snapshot['members'] = members end
local encoded = cjson.encode(snapshot)
redis.call('HSET', KEYS[1], 'closed', '1', 'closedAt', now, 'closedBy', ARGV[1])
if ARGV[2] == '1' then redis.call('DEL', KEYS[4]) end
if ARGV[3] == '1' then redis.call('DEL', KEYS[5]) else redis.call('SET', KEYS[5], encoded) end
return {encoded, present}
