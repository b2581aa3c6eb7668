#!/usr/bin/env bash
# End-to-end figures for issue #18 items 6 and 7, timed around the real `caretrail` binary as a
# user runs it (process start, migrations, reading, the work, the switch, closing the store):
#
#   caretrail audit verify --file export.jsonl --public-key KEY    (offline verification)
#   caretrail projections rebuild --db sqlite://log.db             (SQLite rebuild)
#   caretrail projections rebuild --db postgres://.../DB           (PostgreSQL rebuild; PG=1)
#
# on a log made by `caretrail gen --events N --seed 1` (kept in $DIR and reused). Each phase
# runs RUNS times and prints events/s of wall time with the load average before and after.
#
#   bench/offline/run.sh 1000000                  # builds the release binary, SQLite phases
#   PG=1 CARETRAIL_PG_URL=postgres://postgres@127.0.0.1:5432/postgres bench/offline/run.sh 200000
#   CARETRAIL_BIN=../old/target/release/caretrail bench/offline/run.sh   # another build's binary
#   PHASES=verify bench/offline/run.sh            # verify | rebuild | pg-rebuild, comma-separated
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS=${1:-1000000}
RUNS=${RUNS:-3}
PHASES=${PHASES:-verify,rebuild$([ "${PG:-0}" = 1 ] && echo ,pg-rebuild)}
DIR=${DIR:-target/offline-bench}
if [ -z "${CARETRAIL_BIN:-}" ]; then
  cargo build --release --bin caretrail
  CARETRAIL_BIN=target/release/caretrail
fi
BIN=$(realpath "$CARETRAIL_BIN")
mkdir -p "$DIR"
DIR=$(realpath "$DIR")
export CARETRAIL_MASTER_KEY_FILE="$DIR/master.key"
load() { cut -d' ' -f1-3 /proc/loadavg; }
# Runs "$@" RUNS times; prints events/s of wall time for $EVENTS_DONE events.
timed() {
  local what=$1; shift
  for run in $(seq 1 "$RUNS"); do
    local before after t0 t1
    before=$(load)
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    after=$(load)
    awk -v w="$what" -v r="$run" -v n="$EVENTS_DONE" -v a="$t0" -v b="$t1" -v l1="$before" -v l2="$after" \
      'BEGIN { printf "%s run %d: %d events in %.2f s = %.0f events/s (load %s -> %s)\n", w, r, n, b - a, n / (b - a), l1, l2 }'
  done
}
LITE="$DIR/log-$EVENTS.db"
if [[ ",$PHASES," == *,verify,* || ",$PHASES," == *,rebuild,* ]] && [ ! -f "$LITE.done" ]; then
  rm -f "$LITE" "$LITE"-*
  echo "generating $EVENTS events into $LITE (load $(load))"
  "$BIN" gen --db "sqlite://$LITE" --events "$EVENTS" --seed 1 >"$DIR/gen-$EVENTS.json"
  touch "$LITE.done"
fi
if [[ ",$PHASES," == *,verify,* ]]; then
  EXPORT="$DIR/export-$EVENTS.jsonl"
  if [ ! -f "$EXPORT.done" ]; then
    "$BIN" audit checkpoint --db "sqlite://$LITE" >/dev/null
    "$BIN" audit export --db "sqlite://$LITE" --out "$EXPORT"
    touch "$EXPORT.done"
  fi
  KEY=$("$BIN" audit public-key --db "sqlite://$LITE")
  EVENTS_DONE=$(head -1 "$EXPORT" | sed -E 's/.*"events":([0-9]+).*/\1/')
  cat "$EXPORT" >/dev/null # in the page cache, as on the second run of a user
  timed "audit verify --file" "$BIN" audit verify --file "$EXPORT" --public-key "$KEY"
fi
if [[ ",$PHASES," == *,rebuild,* ]]; then
  EVENTS_DONE=$(sed -nE 's/.*"events": ?([0-9]+).*/\1/p' "$DIR/gen-$EVENTS.json" | head -1)
  # Every rebuild replaces a full generation, as a user's does (the first one finds the empty
  # generation `gen` left, so it is run once untimed).
  RUNS=1 timed "projections rebuild (untimed warm-up)" "$BIN" projections rebuild --db "sqlite://$LITE"
  timed "projections rebuild, SQLite" "$BIN" projections rebuild --db "sqlite://$LITE"
fi
if [[ ",$PHASES," == *,pg-rebuild,* ]]; then
  : "${CARETRAIL_PG_URL:?set CARETRAIL_PG_URL for the PostgreSQL phase}"
  PGDB="caretrail_offline_bench_$EVENTS"
  PGURL="${CARETRAIL_PG_URL%/*}/$PGDB"
  if [ ! -f "$DIR/$PGDB.done" ]; then
    psql "$CARETRAIL_PG_URL" -qc "DROP DATABASE IF EXISTS $PGDB" -c "CREATE DATABASE $PGDB"
    echo "generating $EVENTS events into $PGDB (load $(load))"
    "$BIN" gen --db "$PGURL" --events "$EVENTS" --seed 1 >"$DIR/gen-pg-$EVENTS.json"
    touch "$DIR/$PGDB.done"
  fi
  EVENTS_DONE=$(sed -nE 's/.*"events": ?([0-9]+).*/\1/p' "$DIR/gen-pg-$EVENTS.json" | head -1)
  RUNS=1 timed "projections rebuild, PostgreSQL (untimed warm-up)" "$BIN" projections rebuild --db "$PGURL"
  timed "projections rebuild, PostgreSQL" "$BIN" projections rebuild --db "$PGURL"
fi
