-- KEYS[1] pending zset; ARGV[1] limit. Returns the members whose grace period is over.
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[1]))
