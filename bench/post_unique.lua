-- wrk script: POST $BODY_PREFIX .. n .. $BODY_SUFFIX, with n counting up, so that no two requests
-- carry the same input and the decision cache never answers (the uncached decision path).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local prefix = os.getenv("BODY_PREFIX")
local suffix = os.getenv("BODY_SUFFIX")
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, prefix .. counter .. suffix)
end
