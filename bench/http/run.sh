#!/usr/bin/env bash
# HTTP benchmarks with wrk (Debian package) from a second process on loopback:
#   commands/s at 64 connections (every request a new, durable RegisterBody command), and
#   overview dashboard latency at 100 connections on a generated log.
# Usage: [RUNS=5] [CARETRAIL_BIN=path] [PHASES=commands,dashboard] bench/http/run.sh [EVENTS_FOR_DASHBOARD (default 1000000)]
#   CARETRAIL_BIN runs a given binary (e.g. one built before a change) instead of building this tree's.
set -euo pipefail
cd "$(dirname "$0")/../.."
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
  wrk -t2 -c64 -d20s --latency -s "$OLDPWD/bench/http/register_body.lua" http://127.0.0.1:18555
  kill %1; wait %1 2>/dev/null || true
done
fi
[[ ",$phases," == *",dashboard,"* ]] || exit 0

echo "## overview dashboard (100 connections, 20 s) on $events generated events"
"$bin" gen --db sqlite://dash.db --events "$events" --seed 1 >gen.json
export CARETRAIL_TOKEN=$("$bin" token create --db sqlite://dash.db --role admin --name bench 2>/dev/null)
serve dash.db
# Wait until the dashboards have caught up with the log.
for _ in $(seq 1 600); do curl -sf 127.0.0.1:18555/readyz >/dev/null && break; sleep 1; done
wrk -t2 -c100 -d20s --latency -s "$OLDPWD/bench/http/overview.lua" http://127.0.0.1:18555
