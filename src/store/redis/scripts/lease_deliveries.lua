-- Leases the webhook deliveries that are due: their due time moves to the end of the lease, so
-- no other node takes them while this one works, and a node that dies lets them come due again.
-- KEYS[1] due zset, KEYS[2] deliveries hash.
-- ARGV[1] now (ms), ARGV[2] lease end (ms), ARGV[3] limit.
-- Returns the leased deliveries' JSON.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local json = redis.call('HGET', KEYS[2], id)
  if json then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    table.insert(out, json)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
