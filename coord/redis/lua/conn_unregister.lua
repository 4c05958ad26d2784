-- UnregisterConnection. KEYS[1] registry hash. ARGV[1] connection id,
-- ARGV[2] node set prefix.
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', ARGV[2] .. old, ARGV[1])
end
return 1
