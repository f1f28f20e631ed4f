-- Releases an email claim if the given user still holds it.
-- KEYS[1] email key; ARGV[1] user id. Returns 1 if released.
local current = redis.call('GET', KEYS[1])
if current and string.match(current, '^([^|]+)') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
