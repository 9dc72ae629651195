#!/usr/bin/env bash
# The Kafka movie job with one consumer setting changed at a time (BENCHMARKS.md, "The same job
# from a Kafka topic"): librdkafka's default fetch.queue.backoff.ms (1 s), streamctl's defaults,
# and streamctl's defaults with a 1 s session timeout (the test broker holds a new group's first
# join for half of it). Runs interleaved, ROUNDS times, on one pre-loaded 4-partition topic of the
# local broker, each with a fresh group; prints wall time and CPU seconds of streamctl, and the
# broker's CPU seconds during the run (from its pid file), then the file run of the same input.
#
# usage: scripts/bench-kafka-settings.sh [EVENTS] [DIR]
set -euo pipefail
EVENTS=${1:-2000000}
DIR=${2:-out/bench}
BIN=${STREAMCTL:-target/release/streamctl}
ROUNDS=${ROUNDS:-2}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
INPUT="$DIR/impressions-$EVENTS.jsonl"

eval "$(scripts/services/kafka.sh start)"
tool() { "$KAFKA_PYTHON" tests/support/kafka_tool.py "$KAFKA_BROKERS" "$@"; }
BROKER_PID=$(cat "${STREAMCTL_CACHE:-$HOME/.cache/streamctl}/run/kafka.pid")
broker_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$BROKER_PID/stat"; }

if [ ! -s "$INPUT" ]; then
  "$BIN" generate movie_impressions --count "$EVENTS" --disorder 4s -o "$INPUT.tmp"
  mv "$INPUT.tmp" "$INPUT"
fi
TOPIC="bench-settings-$EVENTS-$$"
tool create "$TOPIC" 4
"$BIN" replay "$INPUT" --to "kafka://$KAFKA_BROKERS/$TOPIC" --key movieId --progress off

n=0
for round in $(seq 1 "$ROUNDS"); do
  for props in "fetch.queue.backoff.ms: '1000'" "" "session.timeout.ms: '1000', heartbeat.interval.ms: '300'"; do
    n=$((n + 1))
    sed "s/group_id: movie-impressions-agg/group_id: bench-settings-$$-$n/" pipelines/movie-impressions.yaml >"$DIR/settings-$n.yaml"
    if [ -n "$props" ]; then
      sed -i "s/    start_from: committed .*/    start_from: committed\n    properties: {$props}/" "$DIR/settings-$n.yaml"
    fi
    rm -rf "$DIR/settings-out-$n"
    b0=$(broker_cpu)
    r=$({ KAFKA_BROKERS=$KAFKA_BROKERS TOPIC=$TOPIC OUTPUT="file://$DIR/settings-out-$n/" \
      /usr/bin/time -f "%e %U %S" "$BIN" run "$DIR/settings-$n.yaml" --bounded --progress off 2>&1 >/dev/null; } | tail -1)
    b1=$(broker_cpu)
    read -r wall user sys <<<"$r"
    awk -v r="$round" -v p="${props:-streamctl defaults}" -v w="$wall" -v c="$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" \
      -v b="$(awk -v a="$b0" -v b="$b1" 'BEGIN { printf "%.2f", b - a }')" -v n="$EVENTS" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
      'BEGIN { printf "round %d {%s}: wall %.2f s, %.2fM events/s, streamctl CPU %.2f s, broker CPU %s s, load %s\n", r, p, w, n / w / 1e6, c, b, l }'
    rm -rf "$DIR/settings-out-$n" "$DIR/settings-$n.yaml"
  done
done
rm -rf "$DIR/settings-file-out"
INPUT="$INPUT" OUTPUT="file://$DIR/settings-file-out/" /usr/bin/time -f "file run: wall %e s, CPU %U user + %S system" \
  "$BIN" run pipelines/movie-impressions-local.yaml --progress off 2>&1 | tail -1
rm -rf "$DIR/settings-file-out"
