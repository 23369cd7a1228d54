-- Replies in a declared shape. A script declares its reply's items by name, in order
-- (`local ADMIT_REPLY = {'admitted', 'lapsed', ...}`); the Rust side reads that same
-- declaration from the script's text (store/reply.rs, `Shape`) and asks for each item
-- by name. reply_shaped builds the reply from the values by name: a declared name with
-- no value, or a value under a name the shape does not declare, stops the script with
-- an error, never a reply whose items moved.
--
-- A reply may also be a head followed by groups of one shape (a batch: one group per
-- visitor); reply_append adds one group to it the same way, and reply_set changes one
-- item of a head already built, by name.
local function reply_append(out, shape, values)
  local given = 0
  for _ in pairs(values) do given = given + 1 end
  for _, name in ipairs(shape) do
    local v = values[name]
    if v == nil then error('reply item ' .. name .. ' has no value') end
    out[#out + 1] = v
  end
  if given ~= #shape then error('a reply item its shape does not declare') end
  return out
end

local function reply_shaped(shape, values)
  return reply_append({}, shape, values)
end

local function reply_set(out, shape, name, value)
  for i, n in ipairs(shape) do
    if n == name then
      out[i] = value
      return out
    end
  end
  error('reply item ' .. name .. ' is not declared')
end
