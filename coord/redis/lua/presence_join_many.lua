-- JoinRoom's presence part, for the joins of one partition (rooms of one
-- partition): JoinPresence for each join, the join event for each fresh
-- entry, then one read of the present connections per room, after every
-- join of the batch.
-- KEYS[1] the partition's due index, then per join: the room's deadlines
-- and Mesh's member set of the room.
-- ARGV[1] the publish command ('publish'; '' when the caller publishes the
-- events: on a cluster a shard channel must share the script's slot),
-- ARGV[2] the presence topic prefix, then per join: connection id, TTL in
-- ms, room, event ('' for none).
-- Returns {fresh: one 0/1 per join, present: one list per distinct room, in
-- the order of their first join}.
local now = now_ms()
local fresh, deadlinesOf, rooms = {}, {}, {}
for j = 0, (#ARGV - 2) / 4 - 1 do
  local a, k = 3 + 4 * j, 2 + 2 * j
  local id, room, event = ARGV[a], ARGV[a + 2], ARGV[a + 3]
  local deadline = now + tonumber(ARGV[a + 1])
  local member = 'p' .. id
  -- A lapsed entry that no sweep has removed yet is revived, not new (see
  -- presence_join.lua).
  local new = redis.call('ZSCORE', KEYS[k], member) == false
  redis.call('ZADD', KEYS[k], ms(deadline), member)
  redis.call('SADD', KEYS[k + 1], id)
  redis.call('ZADD', KEYS[1], 'LT', ms(deadline), room)
  if new then
    fresh[j + 1] = 1
    if ARGV[1] ~= '' and event ~= '' then redis.call(ARGV[1], ARGV[2] .. room, event) end
  else
    fresh[j + 1] = 0
  end
  if not deadlinesOf[room] then
    deadlinesOf[room] = KEYS[k]
    rooms[#rooms + 1] = room
  end
end
local present = {}
for i, room in ipairs(rooms) do
  local ids = {}
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', deadlinesOf[room], '(' .. ms(now), '+inf')) do
    if string.sub(m, 1, 1) == 'p' then ids[#ids + 1] = string.sub(m, 2) end
  end
  present[i] = ids
end
return {fresh, present}
