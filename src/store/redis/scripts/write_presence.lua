-- Applies one node's count of one teammate and decides the transition; a transition appends its
-- event in the same step.
-- KEYS[1] state hash, KEYS[2] nodes hash, KEYS[3] leases zset, KEYS[4] pending zset,
-- KEYS[5] the node's keys set, KEYS[6] the project's teammates hash, KEYS[7] events stream,
-- KEYS[8] event seq hash (all in the project's partition).
-- ARGV[1] node id, ARGV[2] epoch, ARGV[3] connections, ARGV[4] channels (comma-separated),
-- ARGV[5] edge ('connect' | 'disconnect' | 'refresh'), ARGV[6] grace ms, ARGV[7] teammate id,
-- ARGV[8] member "pid:tid", ARGV[9] event retention.
-- Returns {outcome, due_in_ms}: outcome is 'stale', 'inactive', 'recorded', 'online',
-- 'offline' or 'pending' (then due_in_ms says when the grace period ends).
local now = now_ms()
local teammate = redis.call('HGET', KEYS[6], ARGV[7])
local active = false
if teammate then
  local t = cjson.decode(teammate)
  active = t.status == 'active' and not t.trashed
end
if not active then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return {'inactive', 0}
end
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current and parse_entry(current) >= tonumber(ARGV[2]) then
  return {'stale', 0}
end
local before = presence_of(KEYS[1], KEYS[2], KEYS[3], now)
local pid = string.match(ARGV[8], '^([^:]+):')

local function transition(status)
  set_status(KEYS[1], status, now)
  local log = {events = KEYS[7], seq = KEYS[8], retention = ARGV[9]}
  append_event(log, 'presence.' .. status, pid, ARGV[7], now, teammate, nil,
    presence_of(KEYS[1], KEYS[2], KEYS[3], now), before)
  return {status, 0}
end

redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4])
redis.call('SADD', KEYS[5], ARGV[8])
if ARGV[5] ~= 'refresh' then
  redis.call('HSET', KEYS[1], 'last_seen_at', now)
end
local online = redis.call('HGET', KEYS[1], 'status') == 'online'
if live_total(KEYS[2], KEYS[3], now) > 0 then
  redis.call('ZREM', KEYS[4], ARGV[8])
  if not online then
    return transition('online')
  end
  return {'recorded', 0}
end
if not online or tonumber(ARGV[3]) > 0 then
  return {'recorded', 0}
end
local grace = tonumber(ARGV[6])
if grace == 0 then
  redis.call('ZREM', KEYS[4], ARGV[8])
  return transition('offline')
end
-- A disconnect edge restarts the grace period; a re-sent zero count keeps a running one.
local due = now + grace
local existing = redis.call('ZSCORE', KEYS[4], ARGV[8])
if ARGV[5] ~= 'disconnect' and existing then
  due = tonumber(existing)
end
redis.call('ZADD', KEYS[4], due, ARGV[8])
return {'pending', math.max(due - now, 0)}
