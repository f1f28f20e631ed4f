-- Replaces (or, with an empty JSON, deletes) a teammate under an optimistic version check,
-- keeping the owners set and the last-owner rule in the same atomic step.
-- KEYS[1] teammates hash, KEYS[2] owners set, KEYS[3] by_user hash, KEYS[4] user's projects set.
-- ARGV[1] teammate id, ARGV[2] expected version, ARGV[3] new JSON or '' to delete,
-- ARGV[4] '1' if the new state is an active owner, ARGV[5] user id, ARGV[6] project id.
-- Returns 'ok', 'not_found', 'conflict' or 'last_owner'.
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then
  return 'not_found'
end
if tonumber(cjson.decode(current).version) ~= tonumber(ARGV[2]) then
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
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[5])
  redis.call('SREM', KEYS[4], ARGV[6])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
return 'ok'
