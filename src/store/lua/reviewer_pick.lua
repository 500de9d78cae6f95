--[[
reviewer_pick: the replica whose reviewer gets the next task of a role (src/store/redis_reviewers.ts
`ask`). Tasks go round the reviewers of the role connected to the replicas present now (by the
Redis server's TIME): one counter per role, shared by every asking replica, counts the tasks handed
out, and task n goes to reviewer n mod (their number), the replicas taken in order of their ids
and each holding as many turns as it has reviewers. The replica then gives it to its reviewer of
the role holding the fewest tasks. So tasks spread over all the reviewers, whichever replica each
review was submitted to.

KEYS[1]  presence zset   <prefix>{reviewers}:replicas
KEYS[2]  counts hash     <prefix>{reviewers}:counts
KEYS[3]  turns hash      <prefix>{reviewers}:turns    role -> tasks handed out

ARGV[1]  the role
ARGV[2]  how long the turns hash lives after this call, in ms

Returns the id of the chosen replica, or false when no reviewer of the role is connected anywhere.
]]
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = redis.call("ZRANGEBYSCORE", KEYS[1], "(" .. string.format("%.0f", now), "+inf")
if #live == 0 then
  return false
end
table.sort(live)
local counts = redis.call("HMGET", KEYS[2], unpack(live))
local held = {}
local total = 0
for i = 1, #live do
  local n = 0
  if counts[i] then
    local ok, decoded = pcall(cjson.decode, counts[i])
    if ok and type(decoded) == "table" and type(decoded[ARGV[1]]) == "number" then
      n = math.max(0, math.floor(decoded[ARGV[1]]))
    end
  end
  held[i] = n
  total = total + n
end
if total == 0 then
  return false
end
local turn = redis.call("HINCRBY", KEYS[3], ARGV[1], 1)
redis.call("PEXPIRE", KEYS[3], ARGV[2])
local k = turn % total
for i = 1, #live do
  if k < held[i] then
    return live[i]
  end
  k = k - held[i]
end
return false
