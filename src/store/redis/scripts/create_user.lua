-- Inserts a user if its email is free.
-- KEYS[1] email key, KEYS[2] user key; ARGV[1] user id, ARGV[2] user JSON.
-- Returns 1 on success, 0 if the email is taken.
if redis.call('SETNX', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
