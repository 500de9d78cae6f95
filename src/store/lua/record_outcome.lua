--[[
record_outcome: replaces a decision's outcome, notes, lessons, implemented_at and recorder, moves
the outcome counters (the old outcome, or "pending", is no longer counted), appends a lesson entry,
bumps the decision's revision and appends an update event, atomically.

Only on an approved decision (SPEC §9: an outcome is what happened when an approved change was
carried out): checked after the submitter, before the request id and before any write. A decision
that has no status yet (stored since the status backfill by a replica of layout 1) is answered
"unindexed": the caller indexes it and calls again.

An agent records outcomes only on decisions it submitted (ARGV[11] "own"): the submitter is checked
here, in the same step as the write, before anything else but the decision's existence. A decision
without `submitted_by` was stored before principals existed and reads as "anonymous" (as
src/store/redis_codec.ts reads it).

Every key lives in the decision's bucket (one hash tag); the store builds them all
(src/store/keys.ts).

Checks first, writes last (as in save_review.lua): Redis keeps whatever a failing script wrote
before its error, so the request id is marked used only together with the outcome it records, after
every check; a call that fails leaves nothing behind and its retry records.

The lesson's place in ListLessons comes from the Redis server's TIME in µs, strictly after the last
review or lesson of the bucket (`last_us` in the counters hash, shared with save_review.lua), not
from the replica's clock.

KEYS[1]  decision hash        <prefix>{tag}:d:<decision id>
KEYS[2]  counters hash        <prefix>{tag}:counts
KEYS[3]  lessons index (zset) <prefix>{tag}:lessons
KEYS[4]  lesson docs (hash)   <prefix>{tag}:lesson
KEYS[5]  outcome request      <prefix>{tag}:oreq:<decision id>:<request id>, or poreq:… for a
                              principal other than anonymous (not touched when ARGV[8] is "")
KEYS[6]  update stream        <prefix>{tag}:updates

ARGV[1]  new outcome (success, failure or partial)
ARGV[2]  outcome notes
ARGV[3]  lessons learned
ARGV[4]  implemented_at in ms
ARGV[5]  decision id; the lesson member is `<15-digit ms>.<3-digit µs>:<decision id>:<12-digit n>`
         (n counts the bucket's lessons; members written before have no `.<µs>`)
ARGV[6]  lesson JSON
ARGV[7]  operation id, unique per call: a re-sent copy of a call that already landed changes
         nothing more
ARGV[8]  the call's request id, or "" for none
ARGV[9]  fingerprint of outcome, notes and lessons (kept with the request id)
ARGV[10] the principal recording it (outcome_by, and the lesson JSON's recordedBy)
ARGV[11] "any": records on any decision; "own": only on one whose submitted_by is ARGV[12]
ARGV[12] the submitter required with "own"
ARGV[13] approximate maximum length of the update stream (XADD MAXLEN ~)

Returns
  nil                                   there is no such decision
  {"other_submitter", submitted_by}     ARGV[11] is "own" and the decision was submitted by
                                        someone else: nothing was written
  {"unindexed"}                         the decision has no status yet: nothing was written
  {"not_approved", status}              the decision is not approved (a pending one past its
                                        expires_at by this server's TIME is "expired"): nothing
                                        was written
  {"recorded", decision hash}           recorded (or a re-sent copy of this very call had been)
  {"exists", fingerprint, decision hash} the request id was already used for this decision:
                                        nothing was written
The decision hash is its HGETALL after the call. An error reply (WRONGTYPE …, ERR council …) means
nothing was written.
]]

-- ---- checks and reads: nothing below writes until the line "writes" ----

local function wrong_type(key, want)
  local t = redis.call("TYPE", key)["ok"]
  if t ~= "none" and t ~= want then
    return redis.error_reply("WRONGTYPE council record_outcome: " .. key .. " is a " .. t .. ", not a " .. want)
  end
end

if redis.call("EXISTS", KEYS[1]) == 0 then
  return false
end
local bad = wrong_type(KEYS[1], "hash")
if bad then
  return bad
end
if ARGV[11] == "own" then
  local by = redis.call("HGET", KEYS[1], "submitted_by") or "anonymous"
  if by ~= ARGV[12] then
    return { "other_submitter", by }
  end
elseif ARGV[11] ~= "any" then
  return redis.error_reply("ERR council record_outcome: unknown submitter rule " .. ARGV[11])
end
if redis.call("HGET", KEYS[1], "op") == ARGV[7] then
  return { "recorded", redis.call("HGETALL", KEYS[1]) }
end
local now = redis.call("TIME")
local lifecycle = redis.call("HMGET", KEYS[1], "status", "expires_at", "revision", "nv")
local status = lifecycle[1]
if not status then
  return { "unindexed" }
end
if status ~= "approved" then
  local expires_at = tonumber(lifecycle[2] or "")
  if status == "pending" and expires_at and expires_at <= tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) then
    status = "expired"
  end
  return { "not_approved", status }
end
local revision = lifecycle[3] or "0"
if not string.match(revision, "^%d+$") or #revision > 15 then
  return redis.error_reply("ERR council record_outcome: " .. KEYS[1] .. " has revision " .. revision)
end
if ARGV[8] ~= "" then
  bad = wrong_type(KEYS[5], "hash")
  if bad then
    return bad
  end
  local seen = redis.call("HGET", KEYS[5], "fp")
  if seen then
    return { "exists", seen, redis.call("HGETALL", KEYS[1]) }
  end
end
bad = wrong_type(KEYS[2], "hash") or wrong_type(KEYS[3], "zset") or wrong_type(KEYS[4], "hash")
  or wrong_type(KEYS[6], "stream")
if bad then
  return bad
end
if ARGV[1] ~= "success" and ARGV[1] ~= "failure" and ARGV[1] ~= "partial" then
  return redis.error_reply("ERR council record_outcome: unknown outcome " .. ARGV[1])
end
if not string.match(ARGV[13], "^%d+$") then
  return redis.error_reply("ERR council record_outcome: the stream length " .. ARGV[13] .. " is not a number")
end

local old = redis.call("HGET", KEYS[1], "outcome")
if not old or old == "" then
  old = "pending"
end
-- Every counter moved below must hold an integer (or be absent) that ±1 cannot overflow.
local counted = { "outcome:" .. old, "outcome:" .. ARGV[1], "lessons", "last_us", "updates" }
local counts = redis.call("HMGET", KEYS[2], unpack(counted))
for i, v in ipairs(counted) do
  local value = counts[i]
  if value and not (string.match(value, "^%-?%d+$") and #value <= 18) then
    return redis.error_reply("ERR council record_outcome: " .. KEYS[2] .. " field " .. v .. " is not an integer")
  end
end

-- The order: the server's time in µs, strictly after the last review, lesson or change of this bucket.
local t_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = tonumber(counts[4] or "0")
if t_us <= last then
  t_us = last + 1
end
local ms = math.floor(t_us / 1000)
local n = tonumber(counts[3] or "0") + 1
local member = string.format("%015d.%03d:", ms, t_us - ms * 1000) .. ARGV[5] .. ":" .. string.format("%012d", n)

-- ---- writes ----

if ARGV[8] ~= "" then
  redis.call("HSET", KEYS[5], "fp", ARGV[9])
end
redis.call("HINCRBY", KEYS[2], "outcome:" .. old, -1)
redis.call("HINCRBY", KEYS[2], "outcome:" .. ARGV[1], 1)
redis.call("HINCRBY", KEYS[2], "lessons", 1)
redis.call("HSET", KEYS[2], "last_us", string.format("%d", t_us))
redis.call("ZADD", KEYS[3], 0, member)
redis.call("HSET", KEYS[4], member, ARGV[6])
-- outcome_by_op tells the reader that outcome_by belongs to this call's outcome: the code before
-- principals also sets "op", but not outcome_by, which would then be an earlier recorder's.
local next_revision = string.format("%d", tonumber(revision) + 1)
redis.call("HSET", KEYS[1], "outcome", ARGV[1], "notes", ARGV[2], "lessons", ARGV[3],
  "implemented_at", ARGV[4], "op", ARGV[7], "outcome_by", ARGV[10], "outcome_by_op", ARGV[7],
  "revision", next_revision)
-- The update event, as update_lifecycle.lua writes it (the same order clock as the lesson), with
-- this call's id and its lesson, which hold the outcome as this call recorded it (for a reader that
-- finds a later outcome recorded since: src/store/redis_watch.ts).
local seq = redis.call("HINCRBY", KEYS[2], "updates", 1)
redis.call("XADD", KEYS[6], "MAXLEN", "~", ARGV[13], "*", "seq", seq, "us", string.format("%d", t_us),
  "id", ARGV[5], "kind", "outcome", "rev", next_revision, "status", status, "nv", lifecycle[4] or "0", "oc", ARGV[7],
  "lm", member)
return { "recorded", redis.call("HGETALL", KEYS[1]) }
