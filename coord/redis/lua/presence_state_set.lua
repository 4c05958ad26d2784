-- SetPresenceState: store the state; with an expiry, arm its deadline in
-- the room's deadlines (the sweep reports it), else drop any armed one.
-- KEYS[1] the state key, KEYS[2] the room's deadlines, KEYS[3] the due index.
-- ARGV[1] connection id, ARGV[2] state, ARGV[3] expiry in ms (0: none),
-- ARGV[4] room.
local member = 's' .. ARGV[1]
local after = tonumber(ARGV[3])
if after > 0 then
  local deadline = now_ms() + after
  redis.call('SET', KEYS[1], ARGV[2], 'PX', after)
  redis.call('ZADD', KEYS[2], ms(deadline), member)
  redis.call('ZADD', KEYS[3], 'LT', ms(deadline), ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[2], member)
end
return 1
