-- Removes a node's counts (some of them: the members passed) from one partition. A teammate that
-- only this node kept online goes offline at once (with its event), unless it is in a grace
-- period (which then runs its course). Once the node's keys set is empty, its lease goes too.
-- KEYS[1] leases zset, KEYS[2] pending zset, KEYS[3] the node's keys set, KEYS[4] events stream,
-- KEYS[5] event seq hash, then per member its state hash, its nodes hash and its project's
-- teammates hash.
-- ARGV[1] node id, ARGV[2] event retention, ARGV[3] '1' to leave the node alone if its lease is
-- live (it renewed after the reaper saw it expired), ARGV[4..] the members "pid:tid", in the
-- order of their keys.
-- Returns {done (1 once nothing is left here), {the members that turned offline}}.
local now = now_ms()
if ARGV[3] == '1' then
  local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if expiry and tonumber(expiry) >= now then
    return {1, {}}
  end
end
local log = {events = KEYS[4], seq = KEYS[5], retention = ARGV[2]}
local offline = {}
for i = 4, #ARGV do
  local member = ARGV[i]
  local base = 6 + (i - 4) * 3
  local state, nodes, teammates = KEYS[base], KEYS[base + 1], KEYS[base + 2]
  redis.call('HDEL', nodes, ARGV[1])
  redis.call('SREM', KEYS[3], member)
  if redis.call('HGET', state, 'status') == 'online'
      and not redis.call('ZSCORE', KEYS[2], member)
      and live_total(nodes, KEYS[1], now) == 0 then
    local before = presence_of(state, nodes, KEYS[1], now)
    set_status(state, 'offline', now)
    table.insert(offline, member)
    local pid, tid = string.match(member, '^([^:]+):([^:]+)$')
    local teammate = redis.call('HGET', teammates, tid)
    if teammate then
      append_event(log, 'presence.offline', pid, tid, now, teammate, nil,
        presence_of(state, nodes, KEYS[1], now), before)
    end
  end
end
if redis.call('SCARD', KEYS[3]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return {1, offline}
end
return {0, offline}
