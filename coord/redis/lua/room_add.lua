-- AddToRoom: both sides of the membership at once.
-- KEYS[1] the room's member set (the share of the connection's partition),
-- KEYS[2] the connection's room set. ARGV[1] connection id, ARGV[2] room.
-- Returns 1 if the connection was not a member yet.
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return added
