--[[
record_outcome: replaces a decision's outcome, notes, lessons and implemented_at, moves the
outcome counters (the old outcome, or "pending", is no longer counted), and appends a lesson
entry, atomically.

Every key lives in the decision's bucket (one hash tag); the store builds them all
(src/store/keys.ts).

KEYS[1]  decision hash        <prefix>{tag}:d:<decision id>
KEYS[2]  counters hash        <prefix>{tag}:counts
KEYS[3]  lessons index (zset) <prefix>{tag}:lessons
KEYS[4]  lesson docs (hash)   <prefix>{tag}:lesson
KEYS[5]  outcome request      <prefix>{tag}:oreq:<decision id>:<request id> (not touched when ARGV[8] is "")

ARGV[1]  new outcome (success, failure or partial)
ARGV[2]  outcome notes
ARGV[3]  lessons learned
ARGV[4]  implemented_at in ms
ARGV[5]  lesson member prefix: <15-digit ms>:<decision id>:  (the script appends a 12-digit number)
ARGV[6]  lesson JSON
ARGV[7]  operation id, unique per call: a re-sent copy of a call that already landed changes
         nothing more
ARGV[8]  the call's request id, or "" for none
ARGV[9]  fingerprint of outcome, notes and lessons (kept with the request id)

Returns
  nil                                   there is no such decision
  {"recorded", decision hash}           recorded (or a re-sent copy of this very call had been)
  {"exists", fingerprint, decision hash} the request id was already used for this decision:
                                        nothing was written
The decision hash is its HGETALL after the call.
]]
if redis.call("EXISTS", KEYS[1]) == 0 then
  return false
end
if redis.call("HGET", KEYS[1], "op") == ARGV[7] then
  return { "recorded", redis.call("HGETALL", KEYS[1]) }
end
if ARGV[8] ~= "" then
  local seen = redis.call("HGET", KEYS[5], "fp")
  if seen then
    return { "exists", seen, redis.call("HGETALL", KEYS[1]) }
  end
  redis.call("HSET", KEYS[5], "fp", ARGV[9])
end

local old = redis.call("HGET", KEYS[1], "outcome")
if not old or old == "" then
  old = "pending"
end
redis.call("HINCRBY", KEYS[2], "outcome:" .. old, -1)
redis.call("HINCRBY", KEYS[2], "outcome:" .. ARGV[1], 1)

local n = redis.call("HINCRBY", KEYS[2], "lessons", 1)
local member = ARGV[5] .. string.format("%012d", n)
redis.call("ZADD", KEYS[3], 0, member)
redis.call("HSET", KEYS[4], member, ARGV[6])

redis.call("HSET", KEYS[1], "outcome", ARGV[1], "notes", ARGV[2], "lessons", ARGV[3],
  "implemented_at", ARGV[4], "op", ARGV[7])
return { "recorded", redis.call("HGETALL", KEYS[1]) }
