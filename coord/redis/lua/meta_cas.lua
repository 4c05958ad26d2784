-- UpdateRoomMetadata's compare-and-set: store ARGV[2] if the stored value is
-- still the one the caller merged into (ARGV[3] = '1': ARGV[1]; '0': none).
-- KEYS[1] the room metadata hash (field "data").
-- Returns {1} when stored, else {0, current} ({0} when there is none).
local cur = redis.call('HGET', KEYS[1], 'data')
if (cur == false and ARGV[3] == '0') or (cur ~= false and ARGV[3] == '1' and cur == ARGV[1]) then
  redis.call('HSET', KEYS[1], 'data', ARGV[2])
  return {1}
end
return {0, cur}
