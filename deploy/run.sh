#!/usr/bin/env bash
# `make run`: the local Kafka broker, the worker, a demo province published once, the letter's table.
#
#   RUN_DIR         where the demo keeps its files (default var/demo): province, store, worker log
#   DEMO_COMMUNES   size of the demo province (default 130 communes in 27 districts, ~0.7 M events;
#                   520 is the whole Thanh Hóa-like province, ~2.7 M events, a few minutes more)
#
# The province is published on the first run only (the worker's store then holds it); later runs start
# the broker and the worker again and show the same store. Stopping (Ctrl-C) stops the worker; the
# broker keeps running (`make kafka-down` stops it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=.venv/bin
DIR="${RUN_DIR:-var/demo}"
COMMUNES="${DEMO_COMMUNES:-130}"
PROVINCE="$DIR/province-$COMMUNES.jsonl.gz"
export UYTHAC_DB="${UYTHAC_DB:-$DIR/uythac-$COMMUNES.db}"
mkdir -p "$DIR"

deploy/kafka/kafkactl up

if [[ ! -f "$PROVINCE" ]]; then
    "$BIN/uythac" generate --communes "$COMMUNES" --out "$PROVINCE"
fi

if [[ -f "$DIR/worker.pid" ]] && kill -0 "$(cat "$DIR/worker.pid")" 2>/dev/null; then
    kill "$(cat "$DIR/worker.pid")" && sleep 2  # a worker left by an earlier run: one worker per store
fi
"$BIN/uythac" worker >>"$DIR/worker.log" 2>&1 &
worker=$!
echo "$worker" >"$DIR/worker.pid"
trap 'kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null; rm -f "$DIR/worker.pid"' EXIT
echo "worker started (pid $worker, log $DIR/worker.log, metrics http://127.0.0.1:9102/metrics)"

published="$DIR/published-$COMMUNES"
if [[ ! -f "$published" ]]; then
    "$BIN/uythac" publish "$PROVINCE" --rejects "$DIR/rejects-at-publish.jsonl"
    touch "$published"
fi

"$BIN/uythac" status --wait 3600
"$BIN/uythac" distribution
echo "store: $UYTHAC_DB; the report as JSON: $BIN/uythac report --db $UYTHAC_DB"
