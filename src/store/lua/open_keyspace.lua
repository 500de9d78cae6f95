--[[
open_keyspace: run by every replica at start. Creates the keyspace's meta hash if the keyspace is
new, and returns what every replica must agree on: the bucket count, the layout version and the
key that signs page tokens. One script, so that replicas starting together on a new keyspace all
get the same values (the first one's).

KEYS[1]  meta hash   <prefix>meta (outside every bucket; one key, so one slot)

ARGV[1]  bucket count for a new keyspace
ARGV[2]  the layout of a new keyspace (the one this code writes)
ARGV[3]  created_at for a new keyspace (ISO 8601)
ARGV[4]  a fresh random page-token key (base64), kept if the keyspace has none yet
ARGV[5]  the layout of an existing keyspace whose meta records none ("1")
ARGV[6…] the layouts this code opens

A keyspace whose layout is not one of ARGV[6…] is not touched: the caller refuses to start. A
keyspace created before layouts were read may lack the layout field (an older replica sets it just
after the bucket count) or the token key (older replicas had none): both are added, with the
layout ARGV[5], the only layout such a keyspace can have.

Returns {created (1 or 0), buckets, layout, token key}.
]]
local created = 0
if redis.call("HSETNX", KEYS[1], "buckets", ARGV[1]) == 1 then
  redis.call("HSET", KEYS[1], "layout", ARGV[2], "created_at", ARGV[3], "token_key", ARGV[4])
  created = 1
else
  local layout = redis.call("HGET", KEYS[1], "layout")
  if layout then
    local known = false
    for i = 6, #ARGV do
      if ARGV[i] == layout then
        known = true
      end
    end
    if not known then
      return { 0, redis.call("HGET", KEYS[1], "buckets"), layout, false }
    end
  end
  redis.call("HSETNX", KEYS[1], "layout", ARGV[5])
  redis.call("HSETNX", KEYS[1], "token_key", ARGV[4])
end
local meta = redis.call("HMGET", KEYS[1], "buckets", "layout", "token_key")
return { created, meta[1], meta[2], meta[3] }
