-- The presence sweep of one partition: remove every lapsed presence entry
-- and state of the rooms the due index says are due, and return them. The
-- removal and the report are one atomic step, so when several nodes sweep
-- at once each lapse is reported by exactly one of them, and a join, leave
-- or refresh either happens before (and the entry is not lapsed, or is
-- gone) or after (and finds it removed).
-- KEYS[1] the partition's due index.
-- ARGV[1] deadlines prefix, ARGV[2] Mesh's member set prefix, ARGV[3] state
-- key prefix (prefix .. room .. ':conn:' .. id), ARGV[4] most rooms per call.
-- Returns {ms until the next room is due (-1: none; 0: call again now),
--          kind, room, id, kind, room, id, ...} with kind 'p' or 's'.
local now = now_ms()
local limit = tonumber(ARGV[4])
local rooms = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms(now), 'LIMIT', 0, limit)
local out = {-1}
for _, room in ipairs(rooms) do
  local dl = ARGV[1] .. room
  local state = ARGV[3] .. room .. ':conn:'
  local gone = {}
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', dl, '-inf', ms(now))) do
    local kind, id = string.sub(m, 1, 1), string.sub(m, 2)
    local report = false
    if kind == 'p' then
      -- The state goes with the presence, silently: the leave covers it.
      redis.call('ZREM', dl, m, 's' .. id)
      redis.call('SREM', ARGV[2] .. room, id)
      redis.call('DEL', state .. id)
      gone[id] = true
      report = true
    elseif not gone[id] then
      redis.call('ZREM', dl, m)
      redis.call('DEL', state .. id)
      report = true
    end
    if report then
      out[#out + 1] = kind
      out[#out + 1] = room
      out[#out + 1] = id
    end
  end
  local first = redis.call('ZRANGE', dl, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('ZREM', KEYS[1], room)
  else
    redis.call('ZADD', KEYS[1], first[2], room)
  end
end
if #rooms == limit then
  out[1] = 0
else
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #first > 0 then out[1] = math.max(0, tonumber(first[2]) - now) end
end
return out
