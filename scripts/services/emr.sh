#!/usr/bin/env bash
# A local EMR API endpoint for tests: moto (pinned, the venv s3.sh uses) started through
# emr_server.py, which gives steps EMR's lifecycle (PENDING → RUNNING → COMPLETED/FAILED, one
# after another per cluster; CancelSteps; INTERRUPTED when the cluster ends). The same process
# serves S3, for the staging objects. It is a separate instance from s3.sh's (another port), so
# the patch never touches the S3 tests' server.
#
# usage: scripts/services/emr.sh start|stop|env
# Prints: EMR_ENDPOINT, AWS_ENDPOINT_URL_EMR, AWS_ENDPOINT_URL_S3 (both this server),
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, EMR_PYTHON (boto3, for tests' own
# client), EMR_PENDING_S, EMR_RUNNING_S (how long a step stays in each state). Tests create
# their own clusters and buckets and never reset the server.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/moto-venv.sh"

PORT=${STREAMCTL_EMR_PORT:-5050}
PENDING_S=${STREAMCTL_EMR_PENDING_S:-1}
RUNNING_S=${STREAMCTL_EMR_RUNNING_S:-2}
TERMINATING_S=${STREAMCTL_EMR_TERMINATING_S:-1}

print_env() {
  cat <<ENV
EMR_ENDPOINT=http://127.0.0.1:$PORT
AWS_ENDPOINT_URL_EMR=http://127.0.0.1:$PORT
AWS_ENDPOINT_URL_S3=http://127.0.0.1:$PORT
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
AWS_REGION=us-east-1
EMR_PYTHON=$VENV/bin/python
EMR_PENDING_S=$PENDING_S
EMR_RUNNING_S=$RUNNING_S
ENV
}

ready() {
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/moto-api/"
}

# The lifecycle tests rely on is emr_server.py's: a server already running from another
# version of it (another checkout) would answer them wrongly, so say so instead.
SERVER="$(dirname "$0")/emr_server.py"
VERSION_FILE="$RUN_DIR/emr.version"
version() {
  sha256sum "$SERVER" | cut -d' ' -f1
}

case "${1:-}" in
  start)
    svc_lock emr
    install_moto
    if ! ready; then
      if port_open "$PORT"; then
        echo "127.0.0.1:$PORT is taken by something that is not moto; set STREAMCTL_EMR_PORT" >&2
        exit 1
      fi
      STREAMCTL_EMR_PENDING_S=$PENDING_S STREAMCTL_EMR_RUNNING_S=$RUNNING_S \
        STREAMCTL_EMR_TERMINATING_S=$TERMINATING_S \
        start_bg emr "$VENV/bin/python" "$SERVER" -H 127.0.0.1 -p "$PORT"
      version >"$VERSION_FILE"
      for _ in $(seq 1 300); do
        ready && break
        sleep 0.1
      done
      if ! ready; then
        echo "moto (EMR) did not answer on 127.0.0.1:$PORT within 30s; its log:" >&2
        tail -n 50 "$RUN_DIR/emr.log" >&2 || true
        exit 1
      fi
    elif [ "$(cat "$VERSION_FILE" 2>/dev/null)" != "$(version)" ]; then
      echo "the EMR server on 127.0.0.1:$PORT runs another version of $SERVER; restart it" \
        "(scripts/services/emr.sh stop, when no test uses it) or set STREAMCTL_EMR_PORT" >&2
      exit 1
    fi
    print_env
    ;;
  stop)
    svc_lock emr
    stop_bg emr
    rm -f "$VERSION_FILE"
    ;;
  env)
    print_env
    ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
