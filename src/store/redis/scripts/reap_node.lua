-- Removes a node's counts and lease. A teammate that only this node kept online goes offline
-- at once (with its event), unless it is in a grace period (which then runs its course).
-- KEYS[1] leases zset, KEYS[2] pending zset, KEYS[3] the node's keys set.
-- ARGV[1] node id, ARGV[2] key prefix, ARGV[3] event retention, ARGV[4] '1' to leave the node
-- alone if its lease is live (it renewed after the reaper saw it expired).
-- Returns the members that turned offline.
local now = now_ms()
if ARGV[4] == '1' then
  local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if expiry and tonumber(expiry) >= now then
    return {}
  end
end
local offline = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local state = state_key_of(ARGV[2], member)
  local nodes = state .. ':nodes'
  redis.call('HDEL', nodes, ARGV[1])
  if redis.call('HGET', state, 'status') == 'online'
      and not redis.call('ZSCORE', KEYS[2], member)
      and live_total(nodes, KEYS[1], now) == 0 then
    local before = presence_of(state, KEYS[1], now)
    set_status(state, 'offline', now)
    table.insert(offline, member)
    local pid, tid = string.match(member, '^([^:]+):([^:]+)$')
    local teammate = redis.call('HGET', ARGV[2] .. ':project:' .. pid .. ':teammates', tid)
    if teammate then
      append_event(ARGV[2], ARGV[3], 'presence.offline', pid, tid, now, teammate, nil,
        presence_of(state, KEYS[1], now), before)
    end
  end
end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[1], ARGV[1])
return offline
