-- Replaces (or, with an empty JSON, deletes) a teammate under an optimistic version check,
-- keeping the owners set and the last-owner rule in the same atomic step, and appends the
-- change's event. A teammate that stops being active loses every node's count at once.
-- (A deleted teammate's project stays in its user's memberships index, in another slot: readers
-- skip projects where the user has no teammate, so the index may only ever hold too much.)
-- KEYS[1] teammates hash, KEYS[2] owners set, KEYS[3] by_user hash, KEYS[4] presence state hash,
-- KEYS[5] its nodes hash, KEYS[6] leases zset, KEYS[7] pending zset, KEYS[8] events stream,
-- KEYS[9] event seq hash.
-- ARGV[1] teammate id, ARGV[2] expected version, ARGV[3] new JSON or '' to delete,
-- ARGV[4] '1' if the new state is an active owner, ARGV[5] user id, ARGV[6] project id,
-- ARGV[7] event type, ARGV[8] event retention.
-- Returns 'ok', 'not_found', 'conflict' or 'last_owner'.
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then
  return 'not_found'
end
local was = cjson.decode(current)
if tonumber(was.version) ~= tonumber(ARGV[2]) then
  return 'conflict'
end
local was_owner = redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1
local stays_owner = ARGV[4] == '1'
if was_owner and not stays_owner then
  if redis.call('SCARD', KEYS[2]) <= 1 then
    return 'last_owner'
  end
  redis.call('SREM', KEYS[2], ARGV[1])
elseif stays_owner then
  redis.call('SADD', KEYS[2], ARGV[1])
end

local now = now_ms()
local deleting = ARGV[3] == ''
local function is_active(t)
  return t.status == 'active' and not t.trashed
end
local presence_before = nil
if is_active(was) and (deleting or not is_active(cjson.decode(ARGV[3]))) then
  local before = presence_of(KEYS[4], KEYS[5], KEYS[6], now)
  redis.call('DEL', KEYS[5])
  redis.call('ZREM', KEYS[7], ARGV[6] .. ':' .. ARGV[1])
  if redis.call('HGET', KEYS[4], 'status') == 'online' then
    set_status(KEYS[4], 'offline', now)
    presence_before = before
  end
end

local after = ARGV[3]
if deleting then
  after = current
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[5])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
local log = {events = KEYS[8], seq = KEYS[9], retention = ARGV[8]}
append_event(log, ARGV[7], ARGV[6], ARGV[1], now, after, current,
  presence_of(KEYS[4], KEYS[5], KEYS[6], now), presence_before)
return 'ok'
