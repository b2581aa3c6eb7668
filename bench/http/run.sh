#!/usr/bin/env bash
# HTTP benchmarks with wrk (Debian package) from a second process on loopback:
#   commands/s at 64 connections (every request a new, durable RegisterBody command), and
#   every list and dashboard GET route at 100 connections on a generated log, one wrk run per
#   route, with a summary line per route (requests/s, p50, p99, the server's CPU time per
#   request, non-2xx answers).
# Usage: [RUNS=5] [CARETRAIL_BIN=path] [PHASES=commands,dashboard] [ROUTES=name,name] [DURATION=10s]
#        bench/http/run.sh [EVENTS_FOR_DASHBOARD (default 1000000)]
#   CARETRAIL_BIN runs a given binary (e.g. one built before a change) instead of building this tree's.
#   The generated log is kept in target/bench-http/EVENTS/ (generated once: 1M events take
#   minutes) with the master and audit keys the server made for it; delete the folder to start over.
#   ROUTES picks some of the routes below by name (default: all).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [ -n "${CARETRAIL_BIN:-}" ]; then
  bin=$(realpath "$CARETRAIL_BIN")
else
  cargo build --release -q
  bin=$PWD/target/release/caretrail
fi
phases=${PHASES:-commands,dashboard}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
events=${1:-1000000}

serve() {
  "$bin" serve --db "sqlite://$1" --listen 127.0.0.1:18555 --checkpoint-every 1h >/dev/null 2>serve.log &
  server=$!
  for _ in $(seq 1 100); do curl -sf 127.0.0.1:18555/healthz >/dev/null && return; sleep 0.2; done
  echo "server did not start" >&2; cat serve.log >&2; exit 1
}

# Identical runs spread widely on a shared virtual machine (fsync latency), so the command
# phase runs RUNS times (default 5), each on a fresh database, and prints every rate.
runs=${RUNS:-5}
if [[ ",$phases," == *",commands,"* ]]; then
echo "## commands over HTTP (64 connections, 20 s), $runs runs"
for run in $(seq 1 "$runs"); do
  rm -f cmd.db cmd.db-wal cmd.db-shm
  export CARETRAIL_TOKEN=$("$bin" token create --db sqlite://cmd.db --role admin --name bench 2>/dev/null)
  serve cmd.db
  sleep 2
  echo "### run $run"
  wrk -t2 -c64 -d20s --latency -s "$repo/bench/http/register_body.lua" http://127.0.0.1:18555
  kill %1; wait %1 2>/dev/null || true
done
fi
[[ ",$phases," == *",dashboard,"* ]] || exit 0

dash=$repo/target/bench-http/$events
mkdir -p "$dash"
cd "$dash"
if [ ! -f dash.db ]; then
  echo "generating $events events into $dash/dash.db (once)"
  "$bin" gen --db sqlite://dash.db --events "$events" --seed 1 >gen.json
fi
export CARETRAIL_TOKEN=$("$bin" token create --db sqlite://dash.db --role admin --name bench 2>/dev/null)
serve dash.db
# Wait until the dashboards and the audit tree have caught up with the log.
for _ in $(seq 1 1200); do curl -sf 127.0.0.1:18555/readyz >/dev/null && break; sleep 1; done
get() { curl -sf -H "Authorization: Bearer $CARETRAIL_TOKEN" "127.0.0.1:18555$1"; }
# Model workers to read files and timelines of: the first 64 of the list (any order will do;
# cycling through many keeps a single hot row from flattering the figure).
workers=$(get '/api/v1/model-workers?limit=64' | grep -o '"model_worker_id":"[0-9a-f-]*"' | cut -d'"' -f4)
[ -n "$workers" ] || { echo "no model workers in the generated log" >&2; exit 1; }
files=$(for w in $workers; do printf '/api/v1/model-workers/%s ' "$w"; done)
timelines=$(for w in $workers; do printf '/api/v1/model-workers/%s/timeline ' "$w"; done)
# Every list and dashboard GET route of the router (lib.rs `api_routes`), with the filters the
# page uses; name|paths.
routes=(
  "overview|/api/v1/dashboard/overview"
  "overview_city|/api/v1/dashboard/overview?city=330100"
  "issue_summary|/api/v1/dashboard/issues"
  "gifts_month|/api/v1/dashboard/gifts"
  "gifts_county|/api/v1/dashboard/gifts?group_by=county"
  "gifts_director|/api/v1/dashboard/gifts?group_by=director"
  "pairings|/api/v1/pairings"
  "pairings_overdue|/api/v1/pairings?status=overdue"
  "pairings_overdue_page3|/api/v1/pairings?status=overdue&cursor=o100"
  "directors|/api/v1/directors"
  "directors_page3|/api/v1/directors?cursor=o100"
  "model_workers|/api/v1/model-workers"
  "model_workers_page21|/api/v1/model-workers?cursor=o1000"
  "model_workers_hardship|/api/v1/model-workers?in_hardship=true&city=330100"
  "model_worker_file|$files"
  "timeline|$timelines"
  "visits|/api/v1/visits"
  "visits_page21|/api/v1/visits?cursor=o1000"
  "issues|/api/v1/issues"
  "issues_all|/api/v1/issues?state=all"
  "regions_city|/api/v1/regions"
  "regions_county|/api/v1/regions?level=county"
  "events_page|/api/v1/events?after=$((events / 2))"
)
duration=${DURATION:-10s}
# utime + stime of the server process, in clock ticks (/proc/PID/stat fields 14 and 15).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
echo "## every list and dashboard route (100 connections, $duration each) on $events generated events"
summary=()
for entry in "${routes[@]}"; do
  name=${entry%%|*}
  if [ -n "${ROUTES:-}" ] && [[ ",$ROUTES," != *",$name,"* ]]; then continue; fi
  export CARETRAIL_PATHS=${entry#*|}
  echo "### $name (load $(cut -d' ' -f1-3 /proc/loadavg))"
  cpu0=$(cpu_ticks)
  out=$(wrk -t2 -c100 -d"$duration" --latency -s "$repo/bench/http/get.lua" http://127.0.0.1:18555 2>&1)
  cpu1=$(cpu_ticks)
  echo "$out"
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  # The server's own CPU time per answered request (user + system, all its threads): what the
  # code controls, whatever wrk and the other tenants of the machine take.
  us=$(awk -v t=$((cpu1 - cpu0)) -v n="${total:-0}" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { if (n > 0) printf "%.0f", t / hz * 1e6 / n; else print "-" }')
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  bad=$(awk '/Non-2xx or 3xx responses/ {print $NF}' <<<"$out")
  summary+=("$(printf '%-24s %10s req/s  p50 %9s  p99 %9s  server CPU %6s us/req  non-2xx %s' "$name" "$rps" "$p50" "$p99" "$us" "${bad:-0}")")
done
echo "## summary"
printf '%s\n' "${summary[@]}"
