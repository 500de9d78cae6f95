--[[
reviewer_send: puts a message (a task, a withdrawal, an answer) in a replica's inbox, if that
replica is present (by the Redis server's TIME): a message to a replica that stopped would wait
for nobody. The inbox is capped at ARGV[4] messages and expires ARGV[3] ms after the last message
put in it, so that the inbox of a replica that stopped goes away on its own.

KEYS[1]  inbox list      <prefix>{reviewers}:in:<replica id>   (LPUSH here, BRPOP by its replica)
KEYS[2]  presence zset   <prefix>{reviewers}:replicas

ARGV[1]  the replica's id
ARGV[2]  the message (JSON)
ARGV[3]  how long the inbox lives after this call, in ms
ARGV[4]  the most messages the inbox holds (the oldest are dropped beyond)

Returns 1 when the message was put in the inbox, 0 when the replica is not present.
]]
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lapses = redis.call("ZSCORE", KEYS[2], ARGV[1])
if not lapses or tonumber(lapses) <= now then
  return 0
end
redis.call("LPUSH", KEYS[1], ARGV[2])
redis.call("LTRIM", KEYS[1], 0, tonumber(ARGV[4]) - 1)
redis.call("PEXPIRE", KEYS[1], ARGV[3])
return 1
