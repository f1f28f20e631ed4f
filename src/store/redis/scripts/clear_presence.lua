-- Forgets every node's count of a teammate that stopped being active.
-- KEYS[1] state hash, KEYS[2] nodes hash, KEYS[3] pending zset; ARGV[1] member "pid:tid".
-- Returns 1 if the teammate turned offline, else 0.
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[1], 'status') == 'online' then
  set_status(KEYS[1], 'offline', now_ms())
  return 1
end
return 0
