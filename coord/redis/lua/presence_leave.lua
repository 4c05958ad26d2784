-- LeavePresence (and the per-room part of RemoveConnection): remove
-- (room, conn)'s presence and state, and report whether a presence entry,
-- lapsed or not, was there: removing a lapsed entry here takes over the
-- report its sweep would have made.
-- KEYS[1] the room's deadlines, KEYS[2] Mesh's member set, KEYS[3] the
-- connection's state in the room. ARGV[1] connection id.
local removed = redis.call('ZREM', KEYS[1], 'p' .. ARGV[1])
redis.call('ZREM', KEYS[1], 's' .. ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return removed
