-- Reads the presence of several teammates in one round trip.
-- KEYS[1] leases zset; ARGV[1] key prefix, ARGV[2..] members "pid:tid".
-- Returns, per member, "status|changed_at|last_seen_at|connections|channels" (see presence_of).
local now = now_ms()
local out = {}
for i = 2, #ARGV do
  table.insert(out, presence_of(state_key_of(ARGV[1], ARGV[i]), KEYS[1], now))
end
return out
