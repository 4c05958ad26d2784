-- Prune one step: remove up to ARGV[3] expired events from the oldest
-- end, then up to ARGV[3] more of all but the newest ARGV[1] (0: no
-- bound), with their idempotency keys; the caller repeats while a step
-- removes ARGV[3] or more, so that no step holds Redis for long.
-- KEYS[1] the room's event stream. ARGV[2] the room's idempotency key
-- prefix. Returns how many events it removed.
local batch = tonumber(ARGV[3])
return prune(KEYS[1], ARGV[2], now_ms(), batch, tonumber(ARGV[1]), batch)
