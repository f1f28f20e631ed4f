-- Claims a lower-cased email for a user: the email index is what makes emails unique.
-- KEYS[1] email key. ARGV[1] user id, ARGV[2] a holder to take the claim over from, or '',
-- ARGV[3] how long (ms) that holder must have held it.
-- The value is "uid|claimed_at_ms" (Redis clock). A claim is taken over only from the holder the
-- caller names, once the caller has found that the holder's record does not have this email (a
-- sign-up or email change that crashed half-way) and the claim is old enough that no such step
-- can still be running.
-- Returns 'ok' (the user holds it now, or already did) or the holder's id.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local current = redis.call('GET', KEYS[1])
if current then
  local holder, at = string.match(current, '^([^|]+)|(%d+)$')
  if not holder then
    holder, at = current, '0'
  end
  if holder == ARGV[1] then
    return 'ok'
  end
  if holder ~= ARGV[2] or now - tonumber(at) < tonumber(ARGV[3]) then
    return holder
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. now)
return 'ok'
