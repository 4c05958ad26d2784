-- RegisterConnection: owner entry and the owner's connection set, moving
-- the connection out of its previous owner's set.
-- KEYS[1] registry hash. ARGV[1] connection id, ARGV[2] node, ARGV[3] node
-- set prefix (same slot).
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and old ~= ARGV[2] then redis.call('SREM', ARGV[3] .. old, ARGV[1]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', ARGV[3] .. ARGV[2], ARGV[1])
return 1
