-- Ends a grace period: offline (with its event) if it is due and no live node counts the teammate.
-- KEYS[1] state hash, KEYS[2] nodes hash, KEYS[3] leases zset, KEYS[4] pending zset,
-- KEYS[5] the project's teammates hash, KEYS[6] events stream, KEYS[7] event seq hash.
-- ARGV[1] member "pid:tid", ARGV[2] event retention, ARGV[3] project id, ARGV[4] teammate id.
-- Returns {'offline', 0}, {'not_due', ms left} or {'nothing', 0}.
local now = now_ms()
local due = redis.call('ZSCORE', KEYS[4], ARGV[1])
if not due then
  return {'nothing', 0}
end
due = tonumber(due)
if due > now then
  return {'not_due', due - now}
end
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('HGET', KEYS[1], 'status') == 'online' and live_total(KEYS[2], KEYS[3], now) == 0 then
  local before = presence_of(KEYS[1], KEYS[2], KEYS[3], now)
  set_status(KEYS[1], 'offline', now)
  local teammate = redis.call('HGET', KEYS[5], ARGV[4])
  if teammate then
    local log = {events = KEYS[6], seq = KEYS[7], retention = ARGV[2]}
    append_event(log, 'presence.offline', ARGV[3], ARGV[4], now, teammate, nil,
      presence_of(KEYS[1], KEYS[2], KEYS[3], now), before)
  end
  return {'offline', 0}
end
return {'nothing', 0}
