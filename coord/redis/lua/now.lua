-- now: Redis's clock in milliseconds. Every deadline is in Redis time, so
-- nodes with skewed clocks agree on what has lapsed.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ms(x) return string.format('%.0f', x) end
