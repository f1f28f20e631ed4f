-- Records a webhook delivery's progress. A delivery that has ended already (another node
-- finished a duplicate attempt after a lease ran out) is left alone, so it is neither revived
-- nor recorded twice.
-- KEYS[1] deliveries hash, KEYS[2] due zset, KEYS[3] the project's history list.
-- ARGV[1] delivery id, ARGV[2] delivery JSON, ARGV[3] next attempt (ms) or '' if it ended,
-- ARGV[4] history cap. Returns 1 if recorded, 0 if the delivery had ended already.
if ARGV[3] ~= '' then
  if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
    return 0
  end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  return 1
end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
return 1
