-- PresentConnections / PresenceStates / PresenceSnapshot: the connections
-- whose deadline has not passed, and with ARGV[2] = '1' their states, in
-- one consistent read.
-- KEYS[1] the room's deadlines. ARGV[1] the room's state key prefix (a
-- state key is the prefix and the connection id, in the same slot).
-- Returns {ids, {id, state, id, state, ...}}.
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ms(now_ms()), '+inf')
local present = {}
for _, m in ipairs(items) do
  if string.sub(m, 1, 1) == 'p' then present[#present + 1] = string.sub(m, 2) end
end
local states = {}
if ARGV[2] == '1' then
  for _, id in ipairs(present) do
    local v = redis.call('GET', ARGV[1] .. id)
    if v then
      states[#states + 1] = id
      states[#states + 1] = v
    end
  end
end
return {present, states}
