-- KEYS[1] leases zset; ARGV[1] node id, ARGV[2] ttl ms.
-- Returns 1 if the node had a live lease, 0 if it must re-assert its counts.
local now = now_ms()
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if expiry and tonumber(expiry) >= now then
  return 1
end
return 0
