#!/usr/bin/env bash
# A local Kinesis Data Streams server for tests: kinesalite (npm, pinned) under
# $STREAMCTL_CACHE, in memory, bound to 127.0.0.1, plus a venv with boto3 so tests put and
# read records with an AWS client that is not streamctl's (KINESIS_PYTHON).
#
# usage: scripts/services/kinesis.sh start|stop|env
# Prints: KINESIS_ENDPOINT, AWS_ENDPOINT_URL_KINESIS, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# AWS_REGION, KINESIS_PYTHON. Tests create their own uniquely named streams and never reset
# the server (other tests and engineers share it).
#
# What kinesalite does (../shared/SERVICES.md): real 56-digit sequence numbers, CREATING →
# ACTIVE, SplitShard/MergeShards, a closed parent's iterator ends after a split, iterators
# expire after 5 minutes. What it does not: throttling, ChildShards in GetRecords,
# SubscribeToShard, StreamARN addressing, UpdateShardCount; MillisBehindLatest is always 0;
# GetShardIterator AT_TIMESTAMP never answers when no record arrived at or after the timestamp.
source "$(dirname "$0")/lib.sh"

KINESALITE_VERSION=3.3.3
BOTO3_VERSION=1.44.8
PORT=${STREAMCTL_KINESIS_PORT:-4567}
NODE_DIR="$STREAMCTL_CACHE/kinesalite-$KINESALITE_VERSION"
VENV="$STREAMCTL_CACHE/venv-boto3-$BOTO3_VERSION"

print_env() {
  cat <<EOF2
KINESIS_ENDPOINT=http://127.0.0.1:$PORT
AWS_ENDPOINT_URL_KINESIS=http://127.0.0.1:$PORT
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
AWS_REGION=us-east-1
KINESIS_PYTHON=$VENV/bin/python
EOF2
}

install() {
  command -v node >/dev/null || { echo "kinesalite needs Node.js (node) on PATH" >&2; exit 1; }
  if [ ! -f "$NODE_DIR/.installed" ]; then
    echo "installing kinesalite@$KINESALITE_VERSION into $NODE_DIR…" >&2
    rm -rf "$NODE_DIR"
    mkdir -p "$NODE_DIR"
    # In memory (memdown): leveldown's native build is not needed.
    npm install --prefix "$NODE_DIR" --no-audit --no-fund --ignore-scripts \
      "kinesalite@$KINESALITE_VERSION" >&2
    touch "$NODE_DIR/.installed"
  fi
  if [ ! -f "$VENV/.installed" ]; then
    echo "installing boto3==$BOTO3_VERSION into $VENV…" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "boto3==$BOTO3_VERSION" >&2
    touch "$VENV/.installed"
  fi
}

# kinesalite answers an unsigned request with 403 once it is up.
ready() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/" || true)
  [ "$code" = 403 ]
}

case "${1:-}" in
  start)
    svc_lock kinesis
    install
    if ! ready; then
      if port_open "$PORT"; then
        echo "127.0.0.1:$PORT is taken by something that is not kinesalite; set STREAMCTL_KINESIS_PORT" >&2
        exit 1
      fi
      # Its CLI binds every interface; the library call binds loopback only. Stream state
      # changes (create, split, merge, delete) take 50 ms instead of half a second.
      start_bg kinesis node -e "require('$NODE_DIR/node_modules/kinesalite')({createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, shardLimit: 1000}).listen($PORT, '127.0.0.1')"
      for _ in $(seq 1 300); do
        ready && break
        sleep 0.1
      done
      if ! ready; then
        echo "kinesalite did not answer on 127.0.0.1:$PORT within 30s; its log:" >&2
        tail -n 50 "$RUN_DIR/kinesis.log" >&2 || true
        exit 1
      fi
    fi
    print_env
    ;;
  stop)
    svc_lock kinesis
    stop_bg kinesis
    ;;
  env)
    print_env
    ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
