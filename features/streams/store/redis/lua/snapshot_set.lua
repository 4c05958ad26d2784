-- SetSnapshot: replace the room's snapshot unless a newer one is stored.
-- KEYS[1] the room's sequence counter, KEYS[2] its snapshot hash (s: last
-- sequence, v: state). ARGV[1] last sequence, ARGV[2] state.
-- Returns {1}, {-1, head} (beyond the head) or {-2, stored} (stale).
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
local seq = tonumber(ARGV[1])
if seq > head then return {-1, head} end
local cur = redis.call('HGET', KEYS[2], 's')
if cur and tonumber(cur) > seq then return {-2, tonumber(cur)} end
redis.call('HSET', KEYS[2], 's', ARGV[1], 'v', ARGV[2])
return {1}
