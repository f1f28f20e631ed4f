-- Records a webhook delivery's progress, only for the holder of its current lease (the lease is
-- known by its end time, the delivery's due time). A holder whose lease ran out and was taken
-- over by another node, or whose delivery has ended, writes nothing: no attempt history is
-- overwritten, and an ended delivery is neither revived nor recorded twice.
-- KEYS[1] deliveries hash, KEYS[2] due zset, KEYS[3] the project's history list.
-- ARGV[1] delivery id, ARGV[2] delivery JSON, ARGV[3] next attempt (ms) or '' if it ended,
-- ARGV[4] history cap, ARGV[5] the lease held (ms). Returns 1 if recorded, 0 if not the holder.
local due = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not due or tonumber(due) ~= tonumber(ARGV[5]) or redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  return 1
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
return 1
