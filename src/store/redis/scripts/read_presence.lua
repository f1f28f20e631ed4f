-- Reads the presence of several teammates of one partition in one round trip.
-- KEYS[1] leases zset, then per teammate its state hash and its nodes hash.
-- Returns, per teammate, "status|changed_at|last_seen_at|connections|channels" (see presence_of).
local now = now_ms()
local out = {}
for i = 2, #KEYS, 2 do
  table.insert(out, presence_of(KEYS[i], KEYS[i + 1], KEYS[1], now))
end
return out
