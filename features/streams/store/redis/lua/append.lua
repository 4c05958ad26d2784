-- Append: the publish path, one room's events of one batch in one atomic
-- step, so that no one ever sees a sequence without its event or an event
-- without its sequence, and a crash leaves both or neither.
-- KEYS[1] the room's sequence counter, KEYS[2] its event stream, KEYS[3..]
-- the idempotency keys of the events that dedupe, in order.
-- ARGV[1] max length (0: none), ARGV[2] the room's idempotency key prefix,
-- ARGV[3] how many expired events to prune first, then six per event:
-- id, type, ttl ms, flags ('d' dedupe, 'p' payload, 'm' metadata,
-- 'c' encrypted), payload, metadata.
-- Returns per event {1, seq, emittedAt, expiresAt}, or {0, seq, fields} for
-- a duplicate of a retained event.
local now = now_ms()
local maxlen = tonumber(ARGV[1])
local idprefix = ARGV[2]
prune(KEYS[2], idprefix, now, tonumber(ARGV[3]), 0, 0)
local out = {}
local maxexp = 0
local k = 3
for b = 4, #ARGV, 6 do
  local id, typ, ttl, flags = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3]
  local dedupe = string.find(flags, 'd', 1, true)
  local idkey = nil
  local dup = nil
  if dedupe then
    idkey = KEYS[k]
    k = k + 1
    local s = redis.call('GET', idkey)
    if s then
      local e = redis.call('XRANGE', KEYS[2], s .. '-0', s .. '-0')
      if #e > 0 and tonumber(field(e[1][2], 'x')) > now then
        dup = {0, tonumber(s), e[1][2]}
      end
    end
  end
  if dup then
    out[#out + 1] = dup
  else
    local seq = redis.call('INCR', KEYS[1])
    local exp = now + ttl
    local cmd = {'XADD', KEYS[2], string.format('%d-0', seq), 'i', id, 't', typ,
      'w', string.format('%d', now), 'x', string.format('%d', exp)}
    if string.find(flags, 'p', 1, true) then cmd[#cmd + 1] = 'p'; cmd[#cmd + 1] = ARGV[b + 4] end
    if string.find(flags, 'm', 1, true) then cmd[#cmd + 1] = 'm'; cmd[#cmd + 1] = ARGV[b + 5] end
    if string.find(flags, 'c', 1, true) then cmd[#cmd + 1] = 'c'; cmd[#cmd + 1] = '1' end
    redis.call(unpack(cmd))
    if idkey then redis.call('SET', idkey, seq, 'PXAT', exp) end
    if exp > maxexp then maxexp = exp end
    out[#out + 1] = {1, seq, now, exp}
  end
end
if maxlen > 0 then prune(KEYS[2], idprefix, now, 0, maxlen, 0) end
-- The stream lives as long as its longest-lived event, so that an idle
-- room's events leave Redis without a pruner; the counter stays.
if maxexp > 0 then
  local pttl = redis.call('PTTL', KEYS[2])
  if pttl < 0 or now + pttl < maxexp then redis.call('PEXPIREAT', KEYS[2], maxexp) end
end
return out
