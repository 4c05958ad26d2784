-- ClearPresenceState: delete the state and its deadline; report whether
-- either was there (a lapsed state not yet reported counts, and will not be
-- reported).
-- KEYS[1] the state key, KEYS[2] the room's deadlines. ARGV[1] connection id.
local d = redis.call('DEL', KEYS[1])
local z = redis.call('ZREM', KEYS[2], 's' .. ARGV[1])
if d + z > 0 then return 1 end
return 0
