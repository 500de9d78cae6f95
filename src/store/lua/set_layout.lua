--[[
set_layout: records in the keyspace's meta that it now has layout ARGV[2], if it had layout
ARGV[1] (so that a replica never sets back a layout that a newer one recorded meanwhile). Run once
a keyspace of layout 1 has been brought to layout 2 (src/store/redis.ts).

KEYS[1]  meta hash   <prefix>meta

ARGV[1]  the layout the keyspace must have now ("1")
ARGV[2]  the layout to record ("2")

Returns the layout recorded after the call.
]]
if redis.call("HGET", KEYS[1], "layout") == ARGV[1] then
  redis.call("HSET", KEYS[1], "layout", ARGV[2])
end
return redis.call("HGET", KEYS[1], "layout")
