#!/usr/bin/env bash
# `make run`: the local Kafka broker, the worker, a demo province published once, the letter's table,
# then the HTTP API on http://127.0.0.1:8000 in the foreground: nginx (deploy/nginx/nginxctl) there, in
# front of gunicorn on 127.0.0.1:8001 (Ctrl-C stops the API, nginx and the worker).
#
#   RUN_DIR         where the demo keeps its files (default var/demo): province, store, worker log
#   DEMO_COMMUNES   size of the demo province (default 130 communes in 27 districts, ~0.7 M events;
#                   520 is the whole Thanh Hóa-like province, ~2.7 M events, a few minutes more)
#   DB              sqlite (default: a file in RUN_DIR) or postgres: the local PostgreSQL of
#                   deploy/postgres/pgctl (started here, left running; `deploy/postgres/pgctl down` stops it)
#
# The province is published on the first run only (the worker's store then holds it); later runs start
# the broker and the worker again and show the same store. A demo API key (scope: all) is made on the
# first run and kept in $RUN_DIR/api-key (its hash in $RUN_DIR/api-keys.yaml). Stopping (Ctrl-C) stops
# the API, nginx and the worker; the broker keeps running (`make kafka-down` stops it). /metrics and
# /readyz are served on the API's internal address (UYTHAC_API_INTERNAL_BIND), not through nginx.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=.venv/bin
DIR="${RUN_DIR:-var/demo}"
COMMUNES="${DEMO_COMMUNES:-130}"
# Names carry the generator's revision and the store's table layout: a demo made by an older uythac is left
# aside, not refused.
read -r REVISION LAYOUT < <("$BIN/python" -c 'from uythac.devtools.generate import REVISION
from uythac.adapters.sql.layout import head
print(REVISION, head())')
PROVINCE="$DIR/province-$COMMUNES.r$REVISION.jsonl.gz"
DEFAULT_STORE=var/uythac.db # settings.py's default store: what `uythac report`, `status`, `distribution` read
own_store="${UYTHAC_DB:-}"
case "${DB:-sqlite}" in
sqlite) export UYTHAC_DB="${UYTHAC_DB:-$DIR/uythac-$COMMUNES.r$REVISION.layout$LAYOUT.db}" ;;
postgres)
    deploy/postgres/pgctl up
    export UYTHAC_DB="${UYTHAC_DB:-$(deploy/postgres/pgctl url)}"
    ;;
*) echo "DB must be sqlite or postgres, not '$DB'" >&2 && exit 2 ;;
esac
KAFKA_DIR="${UYTHAC_KAFKA_DIR:-var/kafka}"
mkdir -p "$DIR"

# gunicorn behind nginx: nginx reads whole requests first, so slow clients cannot hold gunicorn's threads.
export UYTHAC_API_BIND="${UYTHAC_API_BIND:-127.0.0.1:8001}"
export UYTHAC_API_INTERNAL_BIND="${UYTHAC_API_INTERNAL_BIND:-127.0.0.1:9103}"

worker=""
proxy=""
stop() { # on every exit: the worker and nginx (the broker keeps running)
    if [[ -n "$worker" ]]; then
        kill "$worker" 2>/dev/null || true
        wait "$worker" 2>/dev/null || true
        rm -f "$DIR/worker.pid"
    fi
    [[ -z "$proxy" ]] || deploy/nginx/nginxctl down || true
}
trap stop EXIT
# Ctrl-C is how the API in the foreground is stopped: a clean end (status 0), not `make: *** Error 1`
trap 'exit 0' INT

# The local broker keeps the events published to it. If it holds another revision's demo (the same event ids
# with other content), it starts afresh: it is this project's own broker, made by deploy/kafka/kafkactl.
holds="$KAFKA_DIR/demo-revision"
if [[ -d "$KAFKA_DIR/data" && "$(cat "$holds" 2>/dev/null || echo 1)" != "$REVISION" ]]; then
    echo "the local broker holds the demo of an older generator: starting it afresh ($KAFKA_DIR/data)"
    deploy/kafka/kafkactl down
    rm -rf "$KAFKA_DIR/data"
fi

deploy/kafka/kafkactl up
echo "$REVISION" >"$holds"
# nginx first too (it answers 502 until the API is up): a host that cannot install it fails here, not at the
# end. It stops with this script: by the trap, or by nginxctl's watcher if the script is killed outright.
UYTHAC_NGINX_UPSTREAM="${UYTHAC_NGINX_UPSTREAM:-$UYTHAC_API_BIND}" UYTHAC_NGINX_STOP_WITH_PID=$$ \
    deploy/nginx/nginxctl up
proxy=up

if [[ ! -f "$PROVINCE" ]]; then
    "$BIN/uythac" generate --communes "$COMMUNES" --out "$PROVINCE"
fi

if [[ -f "$DIR/worker.pid" ]] && kill -0 "$(cat "$DIR/worker.pid")" 2>/dev/null; then
    kill "$(cat "$DIR/worker.pid")" && sleep 2  # a worker left by an earlier run: one worker per store
fi
"$BIN/uythac" worker >>"$DIR/worker.log" 2>&1 &
worker=$!
echo "$worker" >"$DIR/worker.pid"
echo "worker started (pid $worker, log $DIR/worker.log, metrics http://127.0.0.1:9102/metrics)"

published="$DIR/published-${DB:-sqlite}-$(basename "$UYTHAC_DB")"  # per store: a new one gets the province again (duplicates are ignored)
if [[ ! -f "$published" ]]; then
    # status 1: some lines refused, as the demo province has a few broken ones on purpose (they are in the file)
    "$BIN/uythac" publish "$PROVINCE" --rejects "$DIR/rejects-at-publish.jsonl" || [[ $? == 1 ]]
    touch "$published"
fi

# The read commands' default store (var/uythac.db) is this demo's store: a link to it, unless that path is a
# store of someone's own, or the store was chosen with UYTHAC_DB.
if [[ -z "$own_store" && "${DB:-sqlite}" == sqlite ]]; then
    if [[ -e "$DEFAULT_STORE" && ! -L "$DEFAULT_STORE" ]]; then
        echo "note: $DEFAULT_STORE is a store of your own: uythac report, status and distribution read it, not this demo's (give --db $UYTHAC_DB)"
    else
        mkdir -p "$(dirname "$DEFAULT_STORE")"
        ln -sfn "$(realpath -m --relative-to="$(dirname "$DEFAULT_STORE")" "$UYTHAC_DB")" "$DEFAULT_STORE"
    fi
fi

# status reads only a store that exists: the worker just started may not have made it yet
for _ in {1..60}; do [[ "$UYTHAC_DB" == *://* || -f "$UYTHAC_DB" ]] && break || sleep 0.5; done
"$BIN/uythac" status --wait 3600
"$BIN/uythac" distribution
if [[ "$(realpath -m "$DEFAULT_STORE")" == "$(realpath -m "$UYTHAC_DB")" ]]; then
    echo "store: $UYTHAC_DB (also $DEFAULT_STORE, the default of uythac report, status and distribution); the report as JSON: $BIN/uythac report"
else
    echo "store: $UYTHAC_DB; the report as JSON: $BIN/uythac report --db $UYTHAC_DB"
fi

# The API over the same store, with a demo key. The demo province's clock T lies in the past, so the
# readiness check on the clock's age is off here (UYTHAC_API_READY_CLOCK_DAYS=0).
export UYTHAC_API_KEYS_FILE="${UYTHAC_API_KEYS_FILE:-$DIR/api-keys.yaml}"
export UYTHAC_API_READY_CLOCK_DAYS="${UYTHAC_API_READY_CLOCK_DAYS:-0}"
if [[ ! -f "$UYTHAC_API_KEYS_FILE" || ! -f "$DIR/api-key" ]]; then
    made="$("$BIN/uythac" apikey --name demo --scope all)"
    head -n1 <<<"$made" >"$DIR/api-key"
    { echo "keys:"; tail -n1 <<<"$made"; } >"$UYTHAC_API_KEYS_FILE"
    chmod 600 "$DIR/api-key"
fi
# The officers' pages sign in with the same key; their session cookies are signed with a secret kept here, so a
# restart of `make run` keeps them signed in.
if [[ -z "${UYTHAC_PAGES_SECRET:-}" ]]; then
    [[ -f "$DIR/pages-secret" ]] || (umask 077 && "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$DIR/pages-secret")
    UYTHAC_PAGES_SECRET="$(cat "$DIR/pages-secret")"
    export UYTHAC_PAGES_SECRET
fi
url="http://127.0.0.1:${UYTHAC_NGINX_PORT:-8000}"
internal="http://$UYTHAC_API_INTERNAL_BIND"
cat <<INFO

The API: $url  (nginx, in front of gunicorn on $UYTHAC_API_BIND; Ctrl-C stops the API, nginx and the worker)
  docs      $url/docs            (OpenAPI: $url/openapi.json)
  health    $url/healthz
  internal  $internal/metrics  $internal/readyz  (operators and Prometheus; worker: http://127.0.0.1:9102/metrics)
  logs      the API: this terminal; nginx: ${UYTHAC_NGINX_DIR:-var/nginx}/logs/ (deploy/nginx/nginxctl logs [error|access])
  try       curl -H "Authorization: Bearer \$(cat $DIR/api-key)" $url/v1/distribution
            curl -H "Authorization: Bearer \$(cat $DIR/api-key)" "$url/v1/units?org=HND&class=yeu"

The pages for officers: $url/trang/  (Vietnamese first; sign in with the key below; docs/pages.md)
  sign-in key  $(cat "$DIR/api-key")  (scope all; also in $DIR/api-key)
INFO
"$BIN/uythac" api
