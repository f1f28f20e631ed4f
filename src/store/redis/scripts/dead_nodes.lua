-- KEYS[1] leases zset. Returns the nodes whose lease has expired.
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now_ms())
