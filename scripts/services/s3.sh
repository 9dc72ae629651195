#!/usr/bin/env bash
# A local S3 server for tests: moto (pinned) in a venv under $STREAMCTL_CACHE, on 127.0.0.1.
# The venv also holds boto3 and pyarrow, so tests can read what streamctl wrote with an
# independent S3 client (S3_PYTHON).
#
# usage: scripts/services/s3.sh start|stop|env
# Prints: S3_ENDPOINT, AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# AWS_REGION, S3_PYTHON. Tests create their own uniquely named buckets and never reset the
# server (other tests and engineers share it).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/moto-venv.sh"

PORT=${STREAMCTL_S3_PORT:-5000}

print_env() {
  cat <<EOF
S3_ENDPOINT=http://127.0.0.1:$PORT
AWS_ENDPOINT_URL_S3=http://127.0.0.1:$PORT
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
AWS_REGION=us-east-1
S3_PYTHON=$VENV/bin/python
EOF
}

# moto answers its own API once it is up (a bare port check can pass too early).
ready() {
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/moto-api/"
}

case "${1:-}" in
  start)
    svc_lock s3
    install_moto
    if ! ready; then
      if port_open "$PORT"; then
        echo "127.0.0.1:$PORT is taken by something that is not moto; set STREAMCTL_S3_PORT" >&2
        exit 1
      fi
      start_bg s3 "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT"
      for _ in $(seq 1 300); do
        ready && break
        sleep 0.1
      done
      if ! ready; then
        echo "moto did not answer on 127.0.0.1:$PORT within 30s; its log:" >&2
        tail -n 50 "$RUN_DIR/s3.log" >&2 || true
        exit 1
      fi
    fi
    print_env
    ;;
  stop)
    svc_lock s3
    stop_bg s3
    ;;
  env)
    print_env
    ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
