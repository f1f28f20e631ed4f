-- Creates a project with its first (owner) teammate. (The owner's memberships index, in another
-- slot, is written first by the caller.)
-- KEYS[1] project, KEYS[2] teammates hash, KEYS[3] by_user hash, KEYS[4] owners set.
-- ARGV[1] project JSON, ARGV[2] owner teammate id, ARGV[3] owner JSON, ARGV[4] owner user id.
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[2])
return 'ok'
