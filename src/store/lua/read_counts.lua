--[[
read_counts: what GetSummary reads, in one call for a group of buckets (all of them on one Redis,
one bucket on a cluster): the sum of the buckets' counters, and whether any of their pending
decisions is due to expire (the summary then expires what is due first, and reads again). Writes
nothing.

KEYS[1..n]     counters hashes          <prefix>{tag}:counts
KEYS[n+1..2n]  expiry schedules (zsets) <prefix>{tag}:exp, of the same buckets
ARGV[1]        now, in ms (the Redis server's clock as the replica last measured it)

Returns {due, field, sum, field, sum, …}: due is 1 when some schedule holds a decision due at
ARGV[1], else 0; then each counter field of KEYS[1..n] with a numeric value, summed over the
buckets (one list of sums rather than every bucket's hash: less to send and to read). Fields that
are not numbers (st_cursor) are left out.
]]
local n = #KEYS / 2
local due = 0
for i = n + 1, 2 * n do
  if #redis.call("ZRANGEBYSCORE", KEYS[i], "-inf", ARGV[1], "LIMIT", 0, 1) > 0 then
    due = 1
    break
  end
end
local sums, order = {}, {}
for i = 1, n do
  local flat = redis.call("HGETALL", KEYS[i])
  for j = 1, #flat, 2 do
    local value = tonumber(flat[j + 1])
    if value then
      local field = flat[j]
      if sums[field] == nil then
        order[#order + 1] = field
        sums[field] = 0
      end
      sums[field] = sums[field] + value
    end
  end
end
local out = { due }
for _, field in ipairs(order) do
  out[#out + 1] = field
  out[#out + 1] = string.format("%.0f", sums[field])
end
return out
