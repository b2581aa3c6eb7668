-- wrk script: every request registers a new body (a new stream, one event), so each request is
-- a distinct, valid, durable command. Run by bench/http/run.sh.
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  math.randomseed(os.time() + id * 7919)
end

local function uuid()
  local t = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"
  return (t:gsub("[xy]", function(c)
    local v = (c == "x") and math.random(0, 0xf) or math.random(8, 0xb)
    return string.format("%x", v)
  end))
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"body_id":"%s","kind":"volunteer_team","name":"压测志愿服务队%d","region_code":"330106"}',
    uuid(), counter)
  return wrk.format("POST", "/api/v1/commands/RegisterBody", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("CARETRAIL_TOKEN"),
  }, body)
end

response = function(status, headers, body)
  if status ~= 201 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end
