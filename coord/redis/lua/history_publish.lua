-- PublishToChannel with history: push, trim to exactly N, and publish, as
-- one step (Mesh: three commands, keeping N+1).
-- KEYS[1] the history list. ARGV[1] message, ARGV[2] N, ARGV[3] 'publish',
-- 'spublish' (whose channel shares KEYS[1]'s slot) or '' for none,
-- ARGV[4] channel.
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if ARGV[3] ~= '' then redis.call(ARGV[3], ARGV[4], ARGV[1]) end
return 1
