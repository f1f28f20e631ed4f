-- Inserts a teammate if the user has none in the project yet, and appends its
-- `project_user.invite` event. (The user's memberships index, in another slot, is written first
-- by the caller.)
-- KEYS[1] project, KEYS[2] teammates hash, KEYS[3] by_user hash, KEYS[4] owners set,
-- KEYS[5] presence state hash, KEYS[6] its nodes hash, KEYS[7] leases zset, KEYS[8] events
-- stream, KEYS[9] event seq hash.
-- ARGV[1] teammate id, ARGV[2] user id, ARGV[3] project id, ARGV[4] teammate JSON,
-- ARGV[5] '1' if the teammate is an active owner, ARGV[6] event retention.
-- Returns 'ok', 'not_found' (no such project) or 'conflict' (the user is already a teammate).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 'not_found'
end
if redis.call('HSETNX', KEYS[3], ARGV[2], ARGV[1]) == 0 then
  return 'conflict'
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
if ARGV[5] == '1' then
  redis.call('SADD', KEYS[4], ARGV[1])
end
local now = now_ms()
local log = {events = KEYS[8], seq = KEYS[9], retention = ARGV[6]}
append_event(log, 'project_user.invite', ARGV[3], ARGV[1], now, ARGV[4], nil,
  presence_of(KEYS[5], KEYS[6], KEYS[7], now), nil)
return 'ok'
