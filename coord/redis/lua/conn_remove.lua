-- The connection part of RemoveConnection: registry entry, owner set,
-- metadata, room list and the connection's place in each room's member
-- set, taken and deleted at once so that concurrent removals (two
-- janitors) see it once.
-- KEYS[1] registry hash, KEYS[2] metadata hash, KEYS[3] the connection's
-- room set. ARGV[1] connection id, ARGV[2] node set prefix, ARGV[3] the node
-- it must be registered to, or '' for any, ARGV[4] the member set prefix of
-- the connection's partition (same slot).
-- Returns {1, node or '', rooms} or {0, '', {}} when ARGV[3] did not match.
local node = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[3] ~= '' and node ~= ARGV[3] then return {0, '', {}} end
local rooms = redis.call('SMEMBERS', KEYS[3])
for _, room in ipairs(rooms) do redis.call('SREM', ARGV[4] .. room, ARGV[1]) end
redis.call('DEL', KEYS[3])
redis.call('HDEL', KEYS[2], ARGV[1])
if node then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', ARGV[2] .. node, ARGV[1])
else
  node = ''
end
return {1, node, rooms}
