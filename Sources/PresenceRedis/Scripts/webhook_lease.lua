-- Takes or renews a worker's lease on one webhook outbox stream. A worker taking a free lease also forgets the
-- stream's consumers that have nothing pending (workers that held it before, whose events were claimed), so they do
-- not pile up across restarts (each is a few hundred bytes of the stream's memory).
-- KEYS[1] webhooks:{tag}:<target>:lease   KEYS[2] webhooks:{tag}:<target> (the stream)
-- ARGV[1] the worker's id   ARGV[2] lease (ms)
-- Returns 1 when the worker holds the lease now (taken or renewed), 0 when another worker does.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then
  local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[2], 'delivery')
  if ok then
    for _, consumer in ipairs(consumers) do
      local name, pending
      for i = 1, #consumer - 1, 2 do
        if consumer[i] == 'name' then name = consumer[i + 1] elseif consumer[i] == 'pending' then pending = consumer[i + 1] end
      end
      if name and name ~= ARGV[1] and pending == 0 then redis.call('XGROUP', 'DELCONSUMER', KEYS[2], 'delivery', name) end
    end
  end
end
return 1
