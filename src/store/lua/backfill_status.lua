--[[
backfill_status: gives one decision stored before SPEC §9 (no `status` field) its lifecycle
fields, its four status index entries and its status count, and moves the bucket's backfill cursor
past it, atomically. Run at open on a keyspace of layout 1 (every decision, chunk by chunk), and by
the sweeper for decisions that a replica of layout 1 still stores while replicas are upgraded
(src/store/redis.ts `backfillStatus`). Idempotent: a decision that has a status already is left as
it is (only the cursor moves), so replicas doing it at once count each decision once.

The status is the caller's, from src/domain/lifecycle.ts legacyLifecycle (auto_approve approved,
reject rejected, the rest pending, no expiry), with the approvals of the policy of the replica that
backfills it: written, so that every replica counts verdicts on it against the same number.

Checks first, writes last (as in save_review.lua): a call that fails writes nothing.

KEYS[1]     decision hash        <prefix>{tag}:d:<decision id>
KEYS[2]     counters hash        <prefix>{tag}:counts
KEYS[3..6]  the four status indexes of ARGV[2] for the decision's type and suggestion

ARGV[1]  the decision's member in <prefix>{tag}:ix:all (`ix`); the cursor moves to it if it is
         past the cursor (counters field `st_cursor`)
ARGV[2]  status
ARGV[3]  approvals required
ARGV[4]  decision type (field `type`)
ARGV[5]  suggestion id (field `sid`)

Returns
  {"indexed"}   the decision got its status now
  {"had"}       it had one: nothing written but the cursor
  {"missing"}   the index names a decision that does not exist: nothing written but the cursor
An error reply (WRONGTYPE …, ERR council …) means nothing was written.
]]

local function wrong_type(key, want)
  local t = redis.call("TYPE", key)["ok"]
  if t ~= "none" and t ~= want then
    return redis.error_reply("WRONGTYPE council backfill_status: " .. key .. " is a " .. t .. ", not a " .. want)
  end
end

local bad = wrong_type(KEYS[1], "hash") or wrong_type(KEYS[2], "hash")
if bad then
  return bad
end
-- Byte by byte, as the sorted set orders members: Lua's `>` on strings follows the server's
-- locale (Redis sets LC_COLLATE from its environment), which may ignore "." and ":".
local function after(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x > y
    end
  end
  return #a > #b
end

local cursor = redis.call("HGET", KEYS[2], "st_cursor")
local move = not cursor or after(ARGV[1], cursor)
local answer
if redis.call("EXISTS", KEYS[1]) == 0 then
  answer = "missing"
elseif redis.call("HEXISTS", KEYS[1], "status") == 1 then
  answer = "had"
else
  answer = "indexed"
  local statuses = { pending = true, approved = true, rejected = true, expired = true, superseded = true }
  if not statuses[ARGV[2]] then
    return redis.error_reply("ERR council backfill_status: unknown status " .. ARGV[2])
  end
  if not string.match(ARGV[3], "^%d+$") then
    return redis.error_reply("ERR council backfill_status: approvals " .. ARGV[3] .. " is not a number")
  end
  for i = 3, 6 do
    bad = wrong_type(KEYS[i], "zset")
    if bad then
      return bad
    end
  end
  local count = redis.call("HGET", KEYS[2], "status:" .. ARGV[2])
  if count and not (string.match(count, "^%-?%d+$") and #count <= 18) then
    return redis.error_reply("ERR council backfill_status: " .. KEYS[2] .. " field status:" .. ARGV[2] .. " is not an integer")
  end
end

-- ---- writes ----

if answer == "indexed" then
  redis.call("HSET", KEYS[1], "status", ARGV[2], "approvals", ARGV[3], "ix", ARGV[1], "type", ARGV[4], "sid", ARGV[5])
  for i = 3, 6 do
    redis.call("ZADD", KEYS[i], 0, ARGV[1])
  end
  redis.call("HINCRBY", KEYS[2], "status:" .. ARGV[2], 1)
end
if move then
  redis.call("HSET", KEYS[2], "st_cursor", ARGV[1])
end
return { answer }
