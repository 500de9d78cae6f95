--[[
reviewer_release: gives back a claim made by reviewer_claim.lua (its review ended without storing a
decision), only if this replica still holds it: a claim that lapsed and was taken by another
replica since is left alone.

KEYS[1]  claim string    <prefix>{tag}:claim:<decision id>

ARGV[1]  the releasing replica's id

Returns 1 when the claim was removed, else 0.
]]
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
