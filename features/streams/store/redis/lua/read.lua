-- Read one page: the events with after < seq <= to, examining at most
-- limit entries, leaving out the expired ones and, with types, the others.
-- KEYS[1] the room's sequence counter, KEYS[2] its event stream.
-- ARGV[1] after, ARGV[2] to (0: none), ARGV[3] limit, ARGV[4..] types.
-- Returns {head, last, id, fields, id, fields, ...}: last is the highest
-- sequence examined.
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
local after, to, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local stop = head
if to > 0 and to < stop then stop = to end
if after >= stop then return {head, after} end
local types = nil
if #ARGV > 3 then
  types = {}
  for j = 4, #ARGV do types[ARGV[j]] = true end
end
local now = now_ms()
local entries = redis.call('XRANGE', KEYS[2], string.format('%d-0', after + 1),
  string.format('%d-0', stop), 'COUNT', limit)
local last = stop
if #entries == limit then last = seq_of(entries[#entries][1]) end
local out = {head, last}
for _, e in ipairs(entries) do
  local f = e[2]
  if tonumber(field(f, 'x')) > now and (types == nil or types[field(f, 't')]) then
    out[#out + 1] = e[1]
    out[#out + 1] = f
  end
end
return out
