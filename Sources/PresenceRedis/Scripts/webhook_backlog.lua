-- One webhook outbox stream's backlog, and what a full outbox dropped from it.
-- KEYS[1] webhooks:{tag}:<target>   KEYS[2] webhooks:{tag}:<target>:delivered
-- Returns {events waiting, events dropped}: dropped = ever added - waiting - delivered.
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local added = 0
for i = 1, #info, 2 do
  if info[i] == 'entries-added' then added = tonumber(info[i + 1]) end
end
local length = redis.call('XLEN', KEYS[1])
local delivered = tonumber(redis.call('GET', KEYS[2]) or '0')
local dropped = added - length - delivered
if dropped < 0 then dropped = 0 end
return {length, dropped}
