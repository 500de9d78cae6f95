--[[
reviewer_claim: claims the asking of the external reviewers for one review (its decision id) for a
while, on every replica (SPEC §11: repeats of one request that arrive together ask them once).
Idempotent: the same replica claiming again (a command re-sent after its reply was lost) is told
it holds the claim. The replica itself keeps two of its own calls from both holding it.

KEYS[1]  claim string    <prefix>{tag}:claim:<decision id>   (in the decision's bucket)

ARGV[1]  the claiming replica's id
ARGV[2]  how long the claim lasts, in ms

Returns 1 when the replica holds the claim, 0 when another one does.
]]
local holder = redis.call("GET", KEYS[1])
if holder == ARGV[1] then
  return 1
end
if holder then
  return 0
end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
return 1
