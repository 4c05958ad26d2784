-- Ack: move a subscriber's cursor forward, never back, never past the head.
-- KEYS[1] the room's sequence counter, KEYS[2] its cursors hash.
-- ARGV[1] subscriber, ARGV[2] sequence.
-- Returns {1, cursor}, or {-1, head} when the sequence is beyond the head.
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
local seq = tonumber(ARGV[2])
if seq > head then return {-1, head} end
local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if seq > cur then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  cur = seq
end
return {1, cur}
