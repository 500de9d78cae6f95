--[[
read_decisions: reads the decisions of one page that live in one bucket, in one call (a listing
makes one such call for its whole page, or one per bucket on a cluster, all in one round trip),
instead of an HSTRLEN per sized field and an HGETALL per decision. Writes nothing.

KEYS[1..n]  decision hashes           <prefix>{tag}:d:<decision id>, all of one bucket
ARGV[1]     a size in bytes: a decision whose sized fields (ARGV[2]) add up to more is not
            returned here, only its size, so that one call never carries more than n times it
ARGV[2]     how many of the field names that follow are the sized fields (they come first)
ARGV[3..]   the fields to return, in this order; the first is the doc, by far the largest

Returns, for each key in order:
  an integer                the sized fields' length in bytes, when that is more than ARGV[1];
  {doc, rest}               else: the doc (nil for a key that does not exist) and a JSON list of
                            the values of ARGV[4..], false for a field the decision lacks (one
                            string rather than one per field: cheaper to send and to read).
]]
local limit = tonumber(ARGV[1])
local sized = tonumber(ARGV[2])
local fields = {}
for i = 3, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
local out = {}
for i, key in ipairs(KEYS) do
  -- The doc's length alone decides most cases without copying it; the other sized fields are
  -- bounded, and are measured once they are read.
  local size = redis.call("HSTRLEN", key, fields[1])
  if size > limit then
    for j = 2, sized do
      size = size + redis.call("HSTRLEN", key, fields[j])
    end
    out[i] = size
  else
    local values = redis.call("HMGET", key, unpack(fields))
    for j = 2, sized do
      if values[j] then
        size = size + #values[j]
      end
    end
    if size > limit then
      out[i] = size
    else
      local doc = values[1]
      table.remove(values, 1)
      out[i] = { doc, cjson.encode(values) }
    end
  end
end
return out
