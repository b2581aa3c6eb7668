-- wrk script: the overview dashboard as an administrator reads it. Run by bench/http/run.sh.
request = function()
  return wrk.format("GET", "/api/v1/dashboard/overview", {
    ["Authorization"] = "Bearer " .. os.getenv("CARETRAIL_TOKEN"),
  })
end
