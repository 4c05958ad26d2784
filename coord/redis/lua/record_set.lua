-- SetRecord: store a value and bump the version, unless the value is the
-- same JSON as the stored one. Sameness is decided by comparing canonical
-- hashes computed by the caller (object key order and number spelling do
-- not matter; see canon.go). A value whose hash is not stored (written by a
-- Mesh server, or by hand) cannot be compared here: the script returns it,
-- the caller compares in Go and calls again with the version it compared
-- against, which the script then requires (compare-and-set).
-- KEYS[1] value, KEYS[2] version, KEYS[3] canonical hash.
-- ARGV[1] new value, ARGV[2] its hash, ARGV[3] the hash of null (a missing
-- record counts as null), ARGV[4] the version the caller compared against,
-- or -1.
-- Returns {0 unchanged | 1 stored | 2 compare in Go, version, old value}.
local cur = redis.call('GET', KEYS[1])
local ver = tonumber(redis.call('GET', KEYS[2]) or '0')
local h
if cur == false then h = ARGV[3] else h = redis.call('GET', KEYS[3]) end
local expect = tonumber(ARGV[4])
if h == ARGV[2] then return {0, ver, cur} end
if (h == false and expect < 0) or (expect >= 0 and expect ~= ver) then return {2, ver, cur} end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ver + 1)
redis.call('SET', KEYS[3], ARGV[2])
return {1, ver + 1, cur}
