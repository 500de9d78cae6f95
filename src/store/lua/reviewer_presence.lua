--[[
reviewer_presence: one replica's heartbeat in the reviewer hub (src/store/redis_reviewers.ts): it
says that the replica is present for ARGV[2] ms more, by the Redis server's TIME (never a replica's
clock: replicas do not compare clocks with each other), and how many reviewers of each role are
connected to it; or, with ARGV[2] "0", that it leaves. Replicas whose presence lapsed (they stopped
without leaving) are removed, a bounded batch per call. Both keys expire ARGV[4] ms after the last
heartbeat of any replica, so that nothing stays behind once every replica has gone.

KEYS[1]  presence zset   <prefix>{reviewers}:replicas   member replica id, score when its presence
                         lapses (ms)
KEYS[2]  counts hash     <prefix>{reviewers}:counts     replica id -> JSON {"<role>": n, ...}

ARGV[1]  the replica's id
ARGV[2]  how long its presence lasts from now, in ms; "0": it leaves now
ARGV[3]  JSON of its connected reviewers per role (ignored when it leaves)
ARGV[4]  how long both keys live after this call, in ms (longer than ARGV[2])

Returns the ids of the replicas present after the call.
]]
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
if ttl == nil or tonumber(ARGV[4]) == nil then
  return redis.error_reply("ERR council reviewer_presence: the durations must be numbers")
end
if ttl > 0 then
  redis.call("ZADD", KEYS[1], string.format("%.0f", now + ttl), ARGV[1])
  redis.call("HSET", KEYS[2], ARGV[1], ARGV[3])
else
  redis.call("ZREM", KEYS[1], ARGV[1])
  redis.call("HDEL", KEYS[2], ARGV[1])
end
local gone = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", string.format("%.0f", now), "LIMIT", 0, 100)
for _, id in ipairs(gone) do
  redis.call("ZREM", KEYS[1], id)
  redis.call("HDEL", KEYS[2], id)
end
redis.call("PEXPIRE", KEYS[1], ARGV[4])
redis.call("PEXPIRE", KEYS[2], ARGV[4])
return redis.call("ZRANGEBYSCORE", KEYS[1], "(" .. string.format("%.0f", now), "+inf")
