-- wrk script: GET requests as an administrator reads the dashboards, cycling through the
-- space-separated paths in CARETRAIL_PATHS (one path, or e.g. several model workers' files so
-- that no single row stays hot). Run by bench/http/run.sh, one wrk run per route. No `response`
-- hook: wrk counts non-2xx answers itself, and a hook would cost wrk CPU the server shares.
local paths = {}
for p in string.gmatch(os.getenv("CARETRAIL_PATHS") or "", "%S+") do
  paths[#paths + 1] = p
end
local i = 0
local auth = "Bearer " .. os.getenv("CARETRAIL_TOKEN")

request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], { ["Authorization"] = auth })
end
