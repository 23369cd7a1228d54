-- Replies in a declared shape. A script declares its reply's items by name, in order
-- (`local ADMIT_REPLY = {'admitted', 'lapsed', ...}`); the Rust side reads that same
-- declaration from the script's text (store/reply.rs, `Shape`) and asks for each item
-- by name. reply_shaped builds the reply from the values by name: a declared name with
-- no value, or a value under a name the shape does not declare, stops the script with
-- an error, never a reply whose items moved.
local function reply_shaped(shape, values)
  local out, given = {}, 0
  for _ in pairs(values) do given = given + 1 end
  for i, name in ipairs(shape) do
    local v = values[name]
    if v == nil then error('reply item ' .. name .. ' has no value') end
    out[i] = v
  end
  if given ~= #shape then error('a reply item its shape does not declare') end
  return out
end
