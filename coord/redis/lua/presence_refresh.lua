-- RefreshPresence for one room: re-arm the deadlines of entries that are
-- present (not lapsed); skip the others.
-- KEYS[1] the room's deadlines, KEYS[2] the partition's due index.
-- ARGV[1] room, then pairs of connection id and TTL in ms.
local now = now_ms()
local earliest
for i = 2, #ARGV, 2 do
  local member = 'p' .. ARGV[i]
  local score = redis.call('ZSCORE', KEYS[1], member)
  if score and tonumber(score) > now then
    local deadline = now + tonumber(ARGV[i + 1])
    redis.call('ZADD', KEYS[1], 'XX', ms(deadline), member)
    if not earliest or deadline < earliest then earliest = deadline end
  end
end
if earliest then redis.call('ZADD', KEYS[2], 'LT', ms(earliest), ARGV[1]) end
return 0
