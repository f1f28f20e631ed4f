-- Removes a node's counts and lease. A teammate that only this node kept online goes offline
-- at once, unless it is in a grace period (which then runs its course).
-- KEYS[1] leases zset, KEYS[2] pending zset, KEYS[3] the node's keys set.
-- ARGV[1] node id, ARGV[2] key prefix. Returns the members that turned offline.
local now = now_ms()
local offline = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local state = state_key_of(ARGV[2], member)
  local nodes = state .. ':nodes'
  redis.call('HDEL', nodes, ARGV[1])
  if redis.call('HGET', state, 'status') == 'online'
      and not redis.call('ZSCORE', KEYS[2], member)
      and live_total(nodes, KEYS[1], now) == 0 then
    set_status(state, 'offline', now)
    table.insert(offline, member)
  end
end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[1], ARGV[1])
return offline
