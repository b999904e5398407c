-- Increments KEYS[1] by ARGV[1] and returns the new value with the key's name.
-- redis-cli --eval counter.lua mykey , 5
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
return {KEYS[1], value}
