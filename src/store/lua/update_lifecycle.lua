--[[
update_lifecycle: one change to a stored decision's lifecycle (SPEC §9), atomically — its status
counters moved, its member moved between the status indexes, its expiry unscheduled when it leaves
pending, its revision bumped and one update event appended — or nothing at all. Two modes:

- "set": a change the app worked out with the rules of src/domain/lifecycle.ts on the decision as
  it read it (a verdict, or a supersede), written by compare-and-set: only if the decision's
  revision is still the one the app read. The rules are not written again here; this script only
  makes sure that nothing changed in between. But if the decision is pending and its expires_at
  has passed by this server's TIME, it expires the decision instead (the change came too late).
- "expire": what every replica's sweeper (and a read that meets a due decision) runs for a decision
  in the expiry schedule: expires it if it is pending and due by this server's TIME, else changes
  nothing. Replicas racing on one decision expire it once: the second finds it expired.

The order of the event comes from the same clock as listings and lessons (TIME in µs, strictly
after the bucket's `last_us`), so that a reader of several streams delivers a change after the
review it changes.

Every key lives in the decision's bucket (one hash tag); the store builds them all
(src/store/keys.ts statusIndexes for the index keys).

Checks first, writes last (as in save_review.lua): a call that fails writes nothing.

KEYS[1]      decision hash      <prefix>{tag}:d:<decision id>
KEYS[2]      counters hash      <prefix>{tag}:counts
KEYS[3]      update stream      <prefix>{tag}:updates
KEYS[4]      expiry schedule    <prefix>{tag}:exp
KEYS[5..8]   the four status indexes of "pending" for the decision's type and suggestion
KEYS[9..12]  the four status indexes of "expired"
KEYS[13..16] "set": the four status indexes of the status the caller read (ARGV[4])
KEYS[17..20] "set": the four status indexes of the new status (ARGV[5])
             ("expire" passes KEYS[5..12] again here)

ARGV[1]  mode: "set" or "expire"
ARGV[2]  decision id (its member in the expiry schedule, and in the event)
ARGV[3]  "set": the revision the caller read
ARGV[4]  "set": the status the caller read (stored, not as presented)
ARGV[5]  "set": the new status
ARGV[6]  "set": the new verdicts: a JSON list, stored as it comes
ARGV[7]  "set": the new superseded_by ("" unless ARGV[5] is superseded)
ARGV[8]  "set": what changed, for the event ("verdict" or "superseded")
ARGV[9]  operation id, unique per call: a re-sent copy of a "set" that already landed (its reply
         was lost) answers "applied" instead of "conflict"
ARGV[10] approximate maximum length of the update stream (XADD MAXLEN ~)
ARGV[11] "set": how many verdicts ARGV[6] holds (field `nv`)

Returns
  nil                     there is no such decision (in "expire", its schedule entry is removed)
  {"unindexed"}           the decision has no status yet (stored since the status backfill by a
                          replica of layout 1): nothing written; the caller indexes it, then calls
                          again
  {"conflict"}            "set": the revision is no longer ARGV[3]: nothing written
  {"applied", hash}       "set": written (or a re-sent copy of this very call had been)
  {"expired", hash}       the decision was pending and past its expires_at: this call expired it
  {"unchanged", status}   "expire": not pending, or not due yet: nothing written (but a schedule
                          entry of a decision that is not pending, which should not exist, is
                          removed, so that the sweeper does not meet it again)
The hash is the decision's HGETALL after the call. An error reply (WRONGTYPE …, ERR council …)
means nothing was written.
]]

-- ---- checks and reads: nothing below writes until the line "writes" ----

local function wrong_type(key, want)
  local t = redis.call("TYPE", key)["ok"]
  if t ~= "none" and t ~= want then
    return redis.error_reply("WRONGTYPE council update_lifecycle: " .. key .. " is a " .. t .. ", not a " .. want)
  end
end

local mode = ARGV[1]
if mode ~= "set" and mode ~= "expire" then
  return redis.error_reply("ERR council update_lifecycle: unknown mode " .. mode)
end
if redis.call("EXISTS", KEYS[1]) == 0 then
  if mode == "expire" then
    -- A schedule entry without its decision (stored data was lost): not met again by every sweep.
    local bad = wrong_type(KEYS[4], "zset")
    if bad then
      return bad
    end
    redis.call("ZREM", KEYS[4], ARGV[2])
  end
  return false
end
local bad = wrong_type(KEYS[1], "hash")
if bad then
  return bad
end
local f = redis.call("HMGET", KEYS[1], "status", "revision", "expires_at", "ix", "lc_op", "nv", "op")
local status, revision, expires_at, member = f[1], f[2] or "0", f[3] or "", f[4]
local verdict_count, outcome_op = f[6] or "0", f[7] or ""
if mode == "set" and f[5] == ARGV[9] then
  return { "applied", redis.call("HGETALL", KEYS[1]) }
end
if not status or not member then
  return { "unindexed" }
end
if not string.match(revision, "^%d+$") or #revision > 15 then
  return redis.error_reply("ERR council update_lifecycle: " .. KEYS[1] .. " has revision " .. revision)
end
if mode == "set" then
  if revision ~= ARGV[3] then
    return { "conflict" }
  end
  if status ~= ARGV[4] then
    return redis.error_reply("ERR council update_lifecycle: " .. KEYS[1] .. " is " .. status .. " at revision " .. revision .. ", not " .. ARGV[4])
  end
end

local now = redis.call("TIME")
local t_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local due = status == "pending" and expires_at ~= "" and tonumber(expires_at) ~= nil and tonumber(expires_at) <= math.floor(t_us / 1000)

if mode == "expire" and not due then
  if status ~= "pending" then
    bad = wrong_type(KEYS[4], "zset")
    if bad then
      return bad
    end
    redis.call("ZREM", KEYS[4], ARGV[2])
  end
  return { "unchanged", status }
end

local to, from_at, to_at, kind
if due then
  to, from_at, to_at, kind = "expired", 5, 9, "expired"
else
  to, from_at, to_at, kind = ARGV[5], 13, 17, ARGV[8]
end
local statuses = { pending = true, approved = true, rejected = true, expired = true, superseded = true }
if not statuses[to] then
  return redis.error_reply("ERR council update_lifecycle: unknown status " .. to)
end
bad = wrong_type(KEYS[2], "hash") or wrong_type(KEYS[3], "stream") or wrong_type(KEYS[4], "zset")
if bad then
  return bad
end
for i = 0, 3 do
  bad = wrong_type(KEYS[from_at + i], "zset") or wrong_type(KEYS[to_at + i], "zset")
  if bad then
    return bad
  end
end
-- Every counter moved below must hold an integer (or be absent) that ±1 cannot overflow.
local counted = { "status:" .. status, "status:" .. to, "updates", "last_us" }
local counts = redis.call("HMGET", KEYS[2], unpack(counted))
for i, v in ipairs(counted) do
  local value = counts[i]
  if value and not (string.match(value, "^%-?%d+$") and #value <= 18) then
    return redis.error_reply("ERR council update_lifecycle: " .. KEYS[2] .. " field " .. v .. " is not an integer")
  end
end
if not string.match(ARGV[10], "^%d+$") then
  return redis.error_reply("ERR council update_lifecycle: the stream length " .. ARGV[10] .. " is not a number")
end
if not due then
  if not string.match(ARGV[11], "^%d+$") then
    return redis.error_reply("ERR council update_lifecycle: the verdict count " .. ARGV[11] .. " is not a number")
  end
  verdict_count = ARGV[11]
end

-- The order: the server's time in µs, strictly after the last review, lesson or change of this bucket.
local last = tonumber(counts[4] or "0")
if t_us <= last then
  t_us = last + 1
end
local us = string.format("%d", t_us)
local next_revision = string.format("%d", tonumber(revision) + 1)

-- ---- writes ----

if due then
  redis.call("HSET", KEYS[1], "status", "expired", "revision", next_revision)
else
  redis.call("HSET", KEYS[1], "status", to, "verdicts", ARGV[6], "nv", verdict_count, "superseded_by", ARGV[7],
    "revision", next_revision, "lc_op", ARGV[9])
end
if to ~= status then
  redis.call("HINCRBY", KEYS[2], "status:" .. status, -1)
  redis.call("HINCRBY", KEYS[2], "status:" .. to, 1)
  for i = 0, 3 do
    redis.call("ZREM", KEYS[from_at + i], member)
    redis.call("ZADD", KEYS[to_at + i], 0, member)
  end
  if status == "pending" then
    redis.call("ZREM", KEYS[4], ARGV[2])
  end
end
redis.call("HSET", KEYS[2], "last_us", us)
local seq = redis.call("HINCRBY", KEYS[2], "updates", 1)
-- Small, like a review's event (about 200 bytes, whatever the decision's size): the bucket's update
-- sequence number (so that a reader can tell when it missed entries), the order, the decision id,
-- what changed, and what tells the decision's state after this change from a later one: its
-- revision, status, verdict count (verdicts are only appended) and the call that recorded its
-- outcome then. The reader fetches the decision and, if it has changed again since, sends it as
-- it was after this change (src/store/redis_watch.ts).
redis.call("XADD", KEYS[3], "MAXLEN", "~", ARGV[10], "*", "seq", seq, "us", us, "id", ARGV[2],
  "kind", kind, "rev", next_revision, "status", to, "nv", verdict_count, "oc", outcome_op)
if due then
  return { "expired", redis.call("HGETALL", KEYS[1]) }
end
return { "applied", redis.call("HGETALL", KEYS[1]) }
