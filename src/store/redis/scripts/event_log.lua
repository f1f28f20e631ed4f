-- Event-log helpers, prepended (after presence_prelude.lua) to every script that appends events.

-- A teammate's presence: "status|changed_at|last_seen_at|connections|channel,channel", counting
-- only nodes whose lease is live.
local function presence_of(state_key, nodes_key, leases_key, now)
  local s = redis.call('HMGET', state_key, 'status', 'changed_at', 'last_seen_at')
  local total = 0
  local seen = {}
  local channels = {}
  local entries = redis.call('HGETALL', nodes_key)
  for i = 1, #entries, 2 do
    local _, count, names = parse_entry(entries[i + 1])
    if count > 0 then
      local expiry = redis.call('ZSCORE', leases_key, entries[i])
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
  return (s[1] or '') .. '|' .. (s[2] or '') .. '|' .. (s[3] or '') .. '|' .. total .. '|'
    .. table.concat(channels, ',')
end

-- Appends one event to the partition's log stream (trimmed to `retention` entries) and assigns
-- the teammate's next `seq` in the partition's seq hash, inside the caller's atomic step.
-- `log` is {events = stream key, seq = seq hash key, retention = n}. `before` and
-- `presence_before` may be nil.
local function append_event(log, event_type, pid, tid, now, after, before, presence,
                            presence_before)
  local seq = redis.call('HINCRBY', log.seq, pid .. ':' .. tid, 1)
  local fields = {'type', event_type, 'pid', pid, 'tid', tid, 'seq', seq, 'ts', now,
    'after', after, 'presence', presence}
  if before then
    table.insert(fields, 'before')
    table.insert(fields, before)
  end
  if presence_before then
    table.insert(fields, 'presence_before')
    table.insert(fields, presence_before)
  end
  redis.call('XADD', log.events, 'MAXLEN', log.retention, '*', unpack(fields))
end
