-- Ends a grace period: offline if it is due and no live node counts the teammate.
-- KEYS[1] state hash, KEYS[2] nodes hash, KEYS[3] leases zset, KEYS[4] pending zset.
-- ARGV[1] member "pid:tid".
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
  set_status(KEYS[1], 'offline', now)
  return {'offline', 0}
end
return {'nothing', 0}
