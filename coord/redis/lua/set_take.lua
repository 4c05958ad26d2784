-- Take a set: return its members and delete it, at once (RemoveFromAllRooms
-- on a connection's room set, ClearRoom on a room).
return {redis.call('SMEMBERS', KEYS[1]), redis.call('DEL', KEYS[1])}
