-- Counts a failed sign-in in a fixed window that starts at the first failure.
-- KEYS[1] counter; ARGV[1] window in milliseconds. Returns {count, milliseconds left}.
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {count, redis.call('PTTL', KEYS[1])}
