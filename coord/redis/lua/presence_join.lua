-- JoinPresence: arm (room, conn)'s deadline and report whether it was new.
-- KEYS[1] the room's deadlines, KEYS[2] Mesh's member set of the room,
-- KEYS[3] the partition's due index.
-- ARGV[1] connection id, ARGV[2] TTL in ms, ARGV[3] room.
-- A lapsed entry that no sweep has removed yet is revived, not new: its
-- ending has not been reported, and now never will be.
local deadline = now_ms() + tonumber(ARGV[2])
local member = 'p' .. ARGV[1]
local new = redis.call('ZSCORE', KEYS[1], member) == false
redis.call('ZADD', KEYS[1], ms(deadline), member)
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], 'LT', ms(deadline), ARGV[3])
if new then return 1 end
return 0
