-- Stores new webhook deliveries, leased to the caller, and acknowledges the events they were made
-- from, in one step: from here on the deliveries survive the node.
-- KEYS[1] deliveries hash, KEYS[2] due zset, KEYS[3] events stream (consumer group `webhooks`).
-- ARGV[1] lease end (ms), ARGV[2] how many deliveries, then that many (id, JSON) pairs, then the
-- stream ids to acknowledge.
local count = tonumber(ARGV[2])
for i = 0, count - 1 do
  local id, json = ARGV[3 + i * 2], ARGV[4 + i * 2]
  redis.call('HSET', KEYS[1], id, json)
  redis.call('ZADD', KEYS[2], ARGV[1], id)
end
local first_ack = 3 + count * 2
if #ARGV >= first_ack then
  redis.call('XACK', KEYS[3], 'webhooks', unpack(ARGV, first_ack))
end
return 'ok'
