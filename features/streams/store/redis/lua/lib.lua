-- Shared by the scripts that remove events (prepended by scripts.go).
-- An event is a stream entry "<seq>-0" with fields i (id), t (type),
-- w (emittedAt ms), x (expiresAt ms) and, when present, p (payload),
-- m (metadata), c (encrypted).

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function field(f, name)
  for j = 1, #f, 2 do
    if f[j] == name then return f[j + 1] end
  end
  return nil
end

local function seq_of(id)
  return tonumber(string.sub(id, 1, string.find(id, '-', 1, true) - 1))
end

-- drop removes the given entries (the oldest of the stream, in order) and
-- the idempotency keys that still point at them.
local function drop(stream, idprefix, entries)
  if #entries == 0 then return 0 end
  for _, e in ipairs(entries) do
    local seq = seq_of(e[1])
    local k = idprefix .. field(e[2], 'i')
    local s = redis.call('GET', k)
    if s and tonumber(s) == seq then redis.call('DEL', k) end
  end
  local last = seq_of(entries[#entries][1])
  redis.call('XTRIM', stream, 'MINID', string.format('%d-0', last + 1))
  return #entries
end

-- prune removes up to limit expired events from the oldest end (0: none),
-- then all but the newest maxlen (0: no bound; at most cap events when cap
-- is positive), and returns how many it removed.
local function prune(stream, idprefix, now, limit, maxlen, cap)
  local removed = 0
  -- The oldest event alone first: almost always it has not expired, and
  -- reading limit entries for every append would cost more than the rest
  -- of the append.
  if limit > 0 then
    local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
    if #first == 0 or tonumber(field(first[1][2], 'x')) > now then limit = 0 end
  end
  if limit > 0 then
    local head = redis.call('XRANGE', stream, '-', '+', 'COUNT', limit)
    local n = 0
    while n < #head and tonumber(field(head[n + 1][2], 'x')) <= now do n = n + 1 end
    if n > 0 then
      local expired = {}
      for j = 1, n do expired[j] = head[j] end
      removed = drop(stream, idprefix, expired)
    end
  end
  if maxlen > 0 then
    local over = redis.call('XLEN', stream) - maxlen
    if cap > 0 and over > cap then over = cap end
    if over > 0 then
      removed = removed + drop(stream, idprefix, redis.call('XRANGE', stream, '-', '+', 'COUNT', over))
    end
  end
  return removed
end
