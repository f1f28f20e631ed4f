-- Shared helpers, prepended to every presence script.

-- Milliseconds on the Redis clock, so that gateway nodes need not agree on the time.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A node's entry: "epoch|connections|channel,channel".
local function parse_entry(value)
  local epoch, count, channels = string.match(value, '^(%d+)|(%d+)|(.*)$')
  return tonumber(epoch), tonumber(count), channels
end

-- The sum of the connections counted by nodes whose lease is live.
local function live_total(nodes_key, leases_key, now)
  local total = 0
  local entries = redis.call('HGETALL', nodes_key)
  for i = 1, #entries, 2 do
    local _, count = parse_entry(entries[i + 1])
    if count > 0 then
      local expiry = redis.call('ZSCORE', leases_key, entries[i])
      if expiry and tonumber(expiry) >= now then
        total = total + count
      end
    end
  end
  return total
end

local function set_status(state_key, status, now)
  redis.call('HSET', state_key, 'status', status, 'changed_at', now)
end
