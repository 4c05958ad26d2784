-- RemoveFromAllRooms: take the connection's room set and remove it from
-- each room's member set, at once.
-- KEYS[1] the connection's room set. ARGV[1] connection id, ARGV[2] the
-- member set prefix of its partition (member set = prefix .. room, same slot).
local rooms = redis.call('SMEMBERS', KEYS[1])
for _, room in ipairs(rooms) do redis.call('SREM', ARGV[2] .. room, ARGV[1]) end
redis.call('DEL', KEYS[1])
return rooms
