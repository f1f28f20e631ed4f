-- Reads the presence of several teammates in one round trip.
-- KEYS[1] leases zset; ARGV[1] key prefix, ARGV[2..] members "pid:tid".
-- Returns, per member, {status, changed_at, last_seen_at, connections, channels}.
local now = now_ms()
local out = {}
for i = 2, #ARGV do
  local state = state_key_of(ARGV[1], ARGV[i])
  local s = redis.call('HMGET', state, 'status', 'changed_at', 'last_seen_at')
  local total = 0
  local seen = {}
  local channels = {}
  local entries = redis.call('HGETALL', state .. ':nodes')
  for j = 1, #entries, 2 do
    local _, count, names = parse_entry(entries[j + 1])
    if count > 0 then
      local expiry = redis.call('ZSCORE', KEYS[1], entries[j])
      if expiry and tonumber(expiry) >= now then
        total = total + count
        for name in string.gmatch(names, '[^,]+') do
          if not seen[name] then
            seen[name] = true
            table.insert(channels, name)
          end
        end
      end
    end
  end
  table.sort(channels)
  table.insert(out, {s[1] or '', s[2] or '', s[3] or '', total, table.concat(channels, ',')})
end
return out
