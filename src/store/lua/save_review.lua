--[[
save_review: stores one review atomically — the decision, its index entries, the bucket's
counters, its idempotency key and its event — or nothing at all.

Every key lives in one bucket (one hash tag); the store builds them all (src/store/keys.ts).

KEYS[1]  decision hash            <prefix>{tag}:d:<decision id>
KEYS[2]  idempotency hash         <prefix>{tag}:req:<request id> (not touched when ARGV[1] is "")
KEYS[3]  index of all decisions   <prefix>{tag}:ix:all
KEYS[4]  index by type            <prefix>{tag}:ix:t:<type>
KEYS[5]  index by suggestion      <prefix>{tag}:ix:s:<suggestion id>
KEYS[6]  index by both            <prefix>{tag}:ix:ts:<type>:<suggestion id>
KEYS[7]  counters hash            <prefix>{tag}:counts
KEYS[8]  event stream             <prefix>{tag}:events

ARGV[1]  request id, or "" for none
ARGV[2]  suggestion fingerprint (kept with the request id)
ARGV[3]  doc: JSON of the decision's immutable part
ARGV[4]  outcome, or ""          ARGV[5]  outcome notes        ARGV[6]  lessons learned
ARGV[7]  implemented_at in ms, or ""
ARGV[8]  index member: <15-digit decided_at ms>:<decision id>
ARGV[9]  decision type (counter type:<t>)
ARGV[10] outcome counted (success, failure, partial or pending)
ARGV[11] "1" when the decision is auto-approved, else "0"
ARGV[12] approximate maximum length of the event stream (XADD MAXLEN ~)
ARGV[13] decision id

Returns
  {"stored"}                          the review is stored (or a re-sent copy of this very
                                      write found it already stored: nothing written twice)
  {"exists", decision id, fingerprint} the request id was taken: nothing was written
]]
if ARGV[1] ~= "" then
  local taken = redis.call("HMGET", KEYS[2], "id", "fp")
  if taken[1] then
    return { "exists", taken[1], taken[2] }
  end
elseif redis.call("EXISTS", KEYS[1]) == 1 then
  -- No request id: decision ids are random, so the key exists only if this write already landed.
  return { "stored" }
end

redis.call("HSET", KEYS[1], "doc", ARGV[3], "outcome", ARGV[4], "notes", ARGV[5], "lessons", ARGV[6],
  "implemented_at", ARGV[7])
if ARGV[1] ~= "" then
  redis.call("HSET", KEYS[2], "id", ARGV[13], "fp", ARGV[2])
end
for i = 3, 6 do
  redis.call("ZADD", KEYS[i], 0, ARGV[8])
end
local seq = redis.call("HINCRBY", KEYS[7], "total", 1)
redis.call("HINCRBY", KEYS[7], "type:" .. ARGV[9], 1)
redis.call("HINCRBY", KEYS[7], "outcome:" .. ARGV[10], 1)
if ARGV[11] == "1" then
  redis.call("HINCRBY", KEYS[7], "auto_approved", 1)
end

-- The event carries the whole decision, the bucket's sequence number (the new total, so that a
-- reader can tell when it missed entries) and the server time in microseconds (to order events of
-- different buckets).
local now = redis.call("TIME")
local us = now[1] .. string.rep("0", 6 - #now[2]) .. now[2]
redis.call("XADD", KEYS[8], "MAXLEN", "~", ARGV[12], "*", "seq", seq, "us", us, "doc", ARGV[3],
  "outcome", ARGV[4], "notes", ARGV[5], "lessons", ARGV[6], "implemented_at", ARGV[7])
return { "stored" }
