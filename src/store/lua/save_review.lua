--[[
save_review: stores one review atomically — the decision with its lifecycle (SPEC §9), its index
entries (status indexes included), the bucket's counters (its status counted), its place in the
expiry schedule if it is pending, its idempotency key and its event — or nothing at all.

Every key lives in one bucket (one hash tag); the store builds them all (src/store/keys.ts).

Checks first, writes last. Redis does not roll a script back: whatever it wrote before an error
stays. So every check (keys of the right type, counters that are integers) and every read comes
before the first write, and the writes that follow cannot fail on anything a check could catch;
a script that fails leaves nothing behind, and a retry with the same request id stores the review.

The order of listings and events comes from here, not from the replica's clock: the Redis server's
TIME in microseconds, made strictly increasing per bucket (`last_us` in the counters hash), so two
reviews stored one after the other are always listed newest first whatever the replicas' clocks.

KEYS[1]  decision hash            <prefix>{tag}:d:<decision id>
KEYS[2]  idempotency hash         <prefix>{tag}:req:<request id>, or preq:… for a principal other
                                  than anonymous (not touched when ARGV[1] is "")
KEYS[3]  index of all decisions   <prefix>{tag}:ix:all
KEYS[4]  index by type            <prefix>{tag}:ix:t:<type>
KEYS[5]  index by suggestion      <prefix>{tag}:ix:s:<suggestion id>
KEYS[6]  index by both            <prefix>{tag}:ix:ts:<type>:<suggestion id>
KEYS[7]  counters hash            <prefix>{tag}:counts
KEYS[8]  event stream             <prefix>{tag}:events
KEYS[9]  index by status          <prefix>{tag}:ix:st:<status>             (status ARGV[16])
KEYS[10] index by status, type    <prefix>{tag}:ix:stt:<status>:<type>
KEYS[11] index by status, suggestion  <prefix>{tag}:ix:sts:<status>:<suggestion id>
KEYS[12] index by all three       <prefix>{tag}:ix:stts:<status>:<type>:<suggestion id>
KEYS[13] expiry schedule (zset)   <prefix>{tag}:exp (touched only for a pending decision that expires)

ARGV[1]  request id, or "" for none
ARGV[2]  suggestion fingerprint (kept with the request id)
ARGV[3]  doc: JSON of the decision's immutable part
ARGV[4]  outcome, or ""          ARGV[5]  outcome notes        ARGV[6]  lessons learned
ARGV[7]  implemented_at in ms, or ""
ARGV[8]  operation id, unique per call (kept with the request id): a re-sent copy of a call that
         already landed (its reply was lost) is told "stored", not "exists"
ARGV[9]  decision type (counter type:<t>)
ARGV[10] outcome counted (success, failure, partial or pending)
ARGV[11] "1" when the decision is auto-approved, else "0"
ARGV[12] approximate maximum length of the event stream (XADD MAXLEN ~)
ARGV[13] decision id
ARGV[14] submitted_by: the principal that submitted the review
ARGV[15] outcome_by: who recorded the outcome of ARGV[4], or ""
ARGV[16] status: pending, approved or rejected (SPEC §9; counter status:<s>)
ARGV[17] approvals required (a count)
ARGV[18] expires_at in ms, or "" for none (a pending decision with one is scheduled in KEYS[13])
ARGV[19] verdicts: a JSON list, stored as it comes ("[]")
ARGV[20] supersedes: the decision this review follows up, or ""
ARGV[21] suggestion id (field `sid`; with ARGV[9] as `type`, for the expiry sweeper)
ARGV[22] how many verdicts ARGV[19] holds (field `nv`: verdicts are only ever appended, so an
         update event that records the count tells which of them the decision had then)

The decision starts at revision 1 (0 is for decisions stored before revisions); `ix` keeps its
index member, so that a status change can move it between the status indexes.

The index member is `<15-digit ms>.<3-digit µs>:<decision id>` of that time; members written
before (`<15-digit ms>:<decision id>`, from the replica's clock) sort among them by their
millisecond, because "." sorts before ":".

Returns
  {"stored"}                          the review is stored (or a re-sent copy of this very
                                      call found it already stored: nothing written twice)
  {"exists", decision id, fingerprint} the request id was taken by another call: nothing written
An error reply (WRONGTYPE …, ERR council …) means nothing was written.
]]
-- ---- checks and reads: nothing below writes until the line "writes" ----

if ARGV[1] ~= "" then
  local taken = redis.call("HMGET", KEYS[2], "id", "fp", "op")
  if taken[1] then
    if taken[3] == ARGV[8] then
      -- This very call already landed and its reply was lost; the client sent it again.
      return { "stored" }
    end
    return { "exists", taken[1], taken[2] }
  end
end
if redis.call("EXISTS", KEYS[1]) == 1 then
  if ARGV[1] == "" then
    -- No request id: decision ids are random, so the key exists only if this write already landed.
    return { "stored" }
  end
  return redis.error_reply("ERR council save_review: decision " .. ARGV[13] .. " exists but its request id is free")
end

-- Every key written below must be of the type written (or not exist yet).
local function wrong_type(key, want)
  local t = redis.call("TYPE", key)["ok"]
  if t ~= "none" and t ~= want then
    return redis.error_reply("WRONGTYPE council save_review: " .. key .. " is a " .. t .. ", not a " .. want)
  end
end
local bad = wrong_type(KEYS[1], "hash") or (ARGV[1] ~= "" and wrong_type(KEYS[2], "hash"))
  or wrong_type(KEYS[3], "zset") or wrong_type(KEYS[4], "zset") or wrong_type(KEYS[5], "zset")
  or wrong_type(KEYS[6], "zset") or wrong_type(KEYS[7], "hash") or wrong_type(KEYS[8], "stream")
  or wrong_type(KEYS[9], "zset") or wrong_type(KEYS[10], "zset") or wrong_type(KEYS[11], "zset")
  or wrong_type(KEYS[12], "zset") or wrong_type(KEYS[13], "zset")
if bad then
  return bad
end
local statuses = { pending = true, approved = true, rejected = true, expired = true, superseded = true }
if not statuses[ARGV[16]] then
  return redis.error_reply("ERR council save_review: unknown status " .. ARGV[16])
end
if not string.match(ARGV[17], "^%d+$") or not string.match(ARGV[22], "^%d+$")
  or not (ARGV[18] == "" or string.match(ARGV[18], "^%d+$")) then
  return redis.error_reply("ERR council save_review: approvals " .. ARGV[17] .. ", verdicts " .. ARGV[22] .. " or expiry "
    .. ARGV[18] .. " is not a number")
end

-- Every counter incremented below must hold an integer (or be absent) that +1 cannot overflow.
local counted = { "total", "type:" .. ARGV[9], "outcome:" .. ARGV[10], "auto_approved", "last_us", "status:" .. ARGV[16] }
local counts = redis.call("HMGET", KEYS[7], unpack(counted))
for i, v in ipairs(counted) do
  local value = counts[i]
  if value and not (string.match(value, "^%-?%d+$") and #value <= 18) then
    return redis.error_reply("ERR council save_review: " .. KEYS[7] .. " field " .. v .. " is not an integer")
  end
end
if not string.match(ARGV[12], "^%d+$") then
  return redis.error_reply("ERR council save_review: the stream length " .. ARGV[12] .. " is not a number")
end

-- The order: the server's time in µs, strictly after the last review or lesson of this bucket.
local now = redis.call("TIME")
local t_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = tonumber(counts[5] or "0")
if t_us <= last then
  t_us = last + 1
end
local ms = math.floor(t_us / 1000)
local member = string.format("%015d.%03d:", ms, t_us - ms * 1000) .. ARGV[13]
local us = string.format("%d", t_us)

-- ---- writes ----

local fields = { "doc", ARGV[3], "submitted_by", ARGV[14], "status", ARGV[16], "verdicts", ARGV[19],
  "approvals", ARGV[17], "revision", "1", "ix", member, "type", ARGV[9], "sid", ARGV[21], "nv", ARGV[22] }
local optional = { "outcome", ARGV[4], "notes", ARGV[5], "lessons", ARGV[6], "implemented_at", ARGV[7],
  "outcome_by", ARGV[15], "expires_at", ARGV[18], "supersedes", ARGV[20] }
for i = 1, #optional, 2 do
  if optional[i + 1] ~= "" or (optional[i] == "outcome_by" and ARGV[4] ~= "") then
    fields[#fields + 1] = optional[i]
    fields[#fields + 1] = optional[i + 1]
  end
end
redis.call("HSET", KEYS[1], unpack(fields))
if ARGV[1] ~= "" then
  redis.call("HSET", KEYS[2], "id", ARGV[13], "fp", ARGV[2], "op", ARGV[8])
end
for i = 3, 6 do
  redis.call("ZADD", KEYS[i], 0, member)
end
for i = 9, 12 do
  redis.call("ZADD", KEYS[i], 0, member)
end
if ARGV[16] == "pending" and ARGV[18] ~= "" then
  redis.call("ZADD", KEYS[13], ARGV[18], ARGV[13])
end
redis.call("HINCRBY", KEYS[7], "status:" .. ARGV[16], 1)
local seq = redis.call("HINCRBY", KEYS[7], "total", 1)
redis.call("HINCRBY", KEYS[7], "type:" .. ARGV[9], 1)
redis.call("HINCRBY", KEYS[7], "outcome:" .. ARGV[10], 1)
if ARGV[11] == "1" then
  redis.call("HINCRBY", KEYS[7], "auto_approved", 1)
end
redis.call("HSET", KEYS[7], "last_us", us)

-- The event is small (about 100 bytes, whatever the decision's size): the bucket's sequence number
-- (the new total, so that a reader can tell when it missed entries or Redis lost data), the order
-- `us` of the listing (to order events of different buckets), the decision id and its type. The
-- reader fetches the decision itself (src/store/redis_watch.ts), unless it is the replica that
-- stored it: that one knows the decision by the operation id `op` (ARGV[8], unique per call).
redis.call("XADD", KEYS[8], "MAXLEN", "~", ARGV[12], "*", "seq", seq, "us", us, "id", ARGV[13],
  "type", ARGV[9], "op", ARGV[8])
return { "stored" }
