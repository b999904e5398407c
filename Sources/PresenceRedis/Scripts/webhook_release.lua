-- Gives up a worker's lease on one webhook outbox stream (a stopping worker), if it still holds it.
-- KEYS[1] webhooks:{tag}:<target>:lease   ARGV[1] the worker's id
-- Returns 1 when the lease was the worker's and is gone.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
