-- Extends a webhook delivery's lease just before an attempt, if the caller still holds it. A
-- lease is known by its end time (the delivery's due time), which is the caller's fencing token:
-- once another node has taken the delivery over, its due time differs and the caller backs off.
-- KEYS[1] due zset. ARGV[1] delivery id, ARGV[2] the lease held (ms), ARGV[3] new lease end (ms).
-- Returns 1 if extended, 0 if the delivery ended or is leased to someone else.
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
