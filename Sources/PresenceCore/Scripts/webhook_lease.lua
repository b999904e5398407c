-- Takes or renews a worker's lease on one webhook outbox stream.
-- KEYS[1] webhooks:{tag}:<target>:lease   ARGV[1] the worker's id   ARGV[2] lease (ms)
-- Returns 1 when the worker holds the lease now (taken or renewed), 0 when another worker does.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
