-- JoinRoom's membership part, for the joins of one partition: AddToRoom for
-- each pair, both sides of each membership at once.
-- KEYS: per join, the room's member set (the share of the connection's
-- partition) and the connection's room set. ARGV: per join, the connection
-- id and the room (ARGV[i] and ARGV[i+1] go with KEYS[i] and KEYS[i+1]).
-- Returns one 0/1 per join: whether the connection was not a member yet.
local added = {}
for i = 1, #KEYS, 2 do
  added[#added + 1] = redis.call('SADD', KEYS[i], ARGV[i])
  redis.call('SADD', KEYS[i + 1], ARGV[i + 1])
end
return added
