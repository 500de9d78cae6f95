--[[
reviewer_counts: the connected reviewers of every replica present now (by the Redis server's TIME),
for ListReviewers (src/store/redis_reviewers.ts `connected`). Writes nothing.

KEYS[1]  presence zset   <prefix>{reviewers}:replicas
KEYS[2]  counts hash     <prefix>{reviewers}:counts

Returns, per replica present, its id and the JSON of its reviewers per role ({"<role>": n, ...}),
one after the other in one flat list.
]]
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = redis.call("ZRANGEBYSCORE", KEYS[1], "(" .. string.format("%.0f", now), "+inf")
if #live == 0 then
  return {}
end
local counts = redis.call("HMGET", KEYS[2], unpack(live))
local out = {}
for i = 1, #live do
  if counts[i] then
    out[#out + 1] = live[i]
    out[#out + 1] = counts[i]
  end
end
return out
