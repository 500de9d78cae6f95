--[[
any_due: whether a group of buckets (all of them on one Redis, one bucket on a cluster) has a
pending decision due to expire, in one call: a listing by status expires what is due before it
reads, and nothing is due almost always. Writes nothing.

KEYS[1..n]  expiry schedules (zsets)    <prefix>{tag}:exp
ARGV[1]     now, in ms (the Redis server's clock as the replica last measured it)

Returns 1 when some schedule holds a decision due at ARGV[1], else 0.
]]
for _, key in ipairs(KEYS) do
  if #redis.call("ZRANGEBYSCORE", key, "-inf", ARGV[1], "LIMIT", 0, 1) > 0 then
    return 1
  end
end
return 0
