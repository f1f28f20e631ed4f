-- Moves a user to a new email, keeping the email index unique.
-- KEYS[1] old email key, KEYS[2] new email key, KEYS[3] user key.
-- ARGV[1] user id, ARGV[2] user JSON (with the new email).
-- Returns 'ok', 'conflict' (the email belongs to another user) or 'not_found' (no such user).
if redis.call('EXISTS', KEYS[3]) == 0 then
  return 'not_found'
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then
  return 'conflict'
end
if KEYS[1] ~= KEYS[2] and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[2])
return 'ok'
