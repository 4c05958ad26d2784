-- RemoveFromRoom: both sides at once. KEYS and ARGV as room_add.lua.
-- Returns 1 if the connection was a member.
local removed = redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
return removed
