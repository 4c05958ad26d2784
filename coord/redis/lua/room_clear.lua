-- ClearRoom, for the members of one partition: take the room's member set
-- and remove the room from each member's room set, at once.
-- KEYS[1] the room's member set (this partition's share). ARGV[1] room,
-- ARGV[2] and ARGV[3] the prefix and suffix of a member's room set (same
-- slot).
local members = redis.call('SMEMBERS', KEYS[1])
for _, id in ipairs(members) do redis.call('SREM', ARGV[2] .. id .. ARGV[3], ARGV[1]) end
redis.call('DEL', KEYS[1])
return members
