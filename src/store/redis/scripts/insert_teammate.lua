-- Inserts a teammate if the user has none in the project yet, and appends its
-- `project_user.invite` event.
-- KEYS[1] project, KEYS[2] teammates hash, KEYS[3] by_user hash, KEYS[4] user's projects set,
-- KEYS[5] owners set, KEYS[6] presence state hash, KEYS[7] leases zset.
-- ARGV[1] teammate id, ARGV[2] user id, ARGV[3] project id, ARGV[4] teammate JSON,
-- ARGV[5] '1' if the teammate is an active owner, ARGV[6] key prefix, ARGV[7] event retention.
-- Returns 'ok', 'not_found' (no such project) or 'conflict' (the user is already a teammate).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 'not_found'
end
if redis.call('HSETNX', KEYS[3], ARGV[2], ARGV[1]) == 0 then
  return 'conflict'
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('SADD', KEYS[4], ARGV[3])
if ARGV[5] == '1' then
  redis.call('SADD', KEYS[5], ARGV[1])
end
local now = now_ms()
append_event(ARGV[6], ARGV[7], 'project_user.invite', ARGV[3], ARGV[1], now, ARGV[4], nil,
  presence_of(KEYS[6], KEYS[7], now), nil)
return 'ok'
