-- KEYS[1] leases zset; ARGV[1] node id, ARGV[2] ttl ms, ARGV[3] the expiry this node last saw
-- acknowledged in this partition ('' if none).
-- Returns {held, the new expiry}: held is 1 if the lease was live and is still the one this node
-- was told about, 0 if it must re-assert its counts. Only renewals write a node's lease, so a
-- lease that differs from the acknowledged one was written by a renewal whose answer was lost
-- (a timeout, or a retry after a failover), and the node cannot know whether it was reaped
-- before that renewal ran.
local now = now_ms()
local expiry = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
local renewed = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], renewed, ARGV[1])
if expiry and expiry >= now and expiry == tonumber(ARGV[3]) then
  return {1, renewed}
end
return {0, renewed}
