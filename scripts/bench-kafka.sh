#!/usr/bin/env bash
# make bench (Kafka part): the movie-impressions job consuming a pre-loaded 4-partition topic
# on the local test broker (scripts/services/kafka.sh), beside the same job reading the same
# records from a file, in the same run. Checks both produce the same rows. Per run it records
# wall time, peak RSS and CPU seconds of streamctl, and the CPU seconds the broker used during
# the Kafka run (what bounds the number), with the load average. Each round also runs the Kafka
# job with `read_ahead: 0` (no reading while the consumer group forms) to show what the
# read-ahead buys and costs. Results go to $DIR/results-kafka.md (copy them into BENCHMARKS.md
# with this command).
#
# usage: scripts/bench-kafka.sh [EVENTS] [DIR]
set -euo pipefail
EVENTS=${1:-10000000}
DIR=${2:-out/bench}
BIN=${STREAMCTL:-target/release/streamctl}
RUNS=${RUNS:-3}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
INPUT="$DIR/impressions-$EVENTS.jsonl"

eval "$(scripts/services/kafka.sh start)"
tool() { "$KAFKA_PYTHON" tests/support/kafka_tool.py "$KAFKA_BROKERS" "$@"; }

if [ ! -s "$INPUT" ]; then
  echo "generating $EVENTS movie impressions…"
  "$BIN" generate movie_impressions --count "$EVENTS" --disorder 4s -o "$INPUT.tmp"
  mv "$INPUT.tmp" "$INPUT"
fi

# A fresh topic per bench run (the broker keeps topics in memory until it stops).
TOPIC="bench-impressions-$EVENTS-$$"
tool create "$TOPIC" 4
echo "loading $EVENTS records into $TOPIC (4 partitions, keyed by movieId)…"
start=$(date +%s.%N)
"$BIN" replay "$INPUT" --to "kafka://$KAFKA_BROKERS/$TOPIC" --key movieId --progress off
REPLAY_SECS=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')

# The broker's pid (the service script's pid file), for its CPU time; empty if unknown.
BROKER_PID=$(cat "${STREAMCTL_CACHE:-$HOME/.cache/streamctl}/run/kafka.pid" 2>/dev/null || true)
broker_cpu() {
  if [ -n "$BROKER_PID" ] && [ -r "/proc/$BROKER_PID/stat" ]; then
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$BROKER_PID/stat"
  else
    echo nan
  fi
}
# wall seconds, peak RSS (KB), CPU seconds (user + system)
measure() {
  /usr/bin/time -f "%e %M %U %S" "$@" 2>&1 >/dev/null | tail -1 | awk '{ print $1, $2, $3 + $4 }'
}
run_kafka() {
  local out="$DIR/kafka-out-$1"
  # A new group each run: `start_from: committed` then starts at the beginning.
  sed "s/group_id: movie-impressions-agg/group_id: bench-$$-$1/" pipelines/movie-impressions.yaml >"$DIR/kafka-$1.yaml"
  if [ -n "${2:-}" ]; then
    sed -i "s/^    start_from: committed .*/&\n    read_ahead: $2/" "$DIR/kafka-$1.yaml"
    grep -q "read_ahead: $2" "$DIR/kafka-$1.yaml"
  fi
  measure env KAFKA_BROKERS="$KAFKA_BROKERS" TOPIC="$TOPIC" OUTPUT="file://$out/" \
    "$BIN" run "$DIR/kafka-$1.yaml" --bounded --progress off
}
run_file() {
  local out="$DIR/file-out-$1"
  measure env INPUT="$INPUT" OUTPUT="file://$out/" "$BIN" run pipelines/movie-impressions-local.yaml --progress off
}

rm -rf "$DIR"/kafka-out-* "$DIR"/file-out-*
results=()
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for i in $(seq 1 "$RUNS"); do
  b0=$(broker_cpu)
  read -r k_wall k_rss k_cpu < <(run_kafka "$i")
  b1=$(broker_cpu)
  b_cpu=$(awk -v a="$b0" -v b="$b1" 'BEGIN { if (a == "nan" || b == "nan") print "nan"; else printf "%.2f", b - a }')
  read -r f_wall f_rss f_cpu < <(run_file "$i")
  read -r n_wall n_rss n_cpu < <(run_kafka "$i-no-read-ahead" 0)
  results+=("$i $k_wall $k_rss $k_cpu $b_cpu $f_wall $f_rss $f_cpu $n_wall $n_rss")
  echo "run $i: kafka ${k_wall}s ${k_rss}KB ${k_cpu} CPU-s (broker ${b_cpu} CPU-s)   file ${f_wall}s ${f_rss}KB ${f_cpu} CPU-s   kafka without read-ahead ${n_wall}s ${n_rss}KB"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# The same rows from both sources.
python3 - "$DIR/kafka-out-1" "$DIR/file-out-1" "$DIR/kafka-out-1-no-read-ahead" <<'PY'
import collections, glob, os, sys
def rows(root):
    c = collections.Counter()
    for f in glob.glob(os.path.join(root, "**", "*.csv"), recursive=True):
        bucket = os.path.relpath(os.path.dirname(f), root)
        with open(f) as fh:
            next(fh)
            for line in fh:
                c[(bucket, line)] += 1
    return c
a, b, c = rows(sys.argv[1]), rows(sys.argv[2]), rows(sys.argv[3])
print(f"rows: kafka {sum(a.values())}, file {sum(b.values())}, kafka without read-ahead {sum(c.values())}, identical: {a == b == c}")
sys.exit(0 if a == b == c else 1)
PY

{
  echo "| run | Kafka wall (s) | Kafka events/s | Kafka peak RSS (MiB) | streamctl CPU (s) | broker CPU (s) | file wall (s) | file events/s | file peak RSS (MiB) | file CPU (s) | Kafka, \`read_ahead: 0\`: wall (s) | events/s | peak RSS (MiB) |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for r in "${results[@]}"; do
    read -r i kw kr kc bc fw fr fc nw nr <<<"$r"
    awk -v i="$i" -v kw="$kw" -v kr="$kr" -v kc="$kc" -v bc="$bc" -v fw="$fw" -v fr="$fr" -v fc="$fc" -v nw="$nw" -v nr="$nr" -v n="$EVENTS" \
      'BEGIN { printf "| %d | %.2f | %.2fM | %.0f | %.2f | %s | %.2f | %.2fM | %.0f | %.2f | %.2f | %.2fM | %.0f |\n", i, kw, n/kw/1e6, kr/1024, kc, bc, fw, n/fw/1e6, fr/1024, fc, nw, n/nw/1e6, nr/1024 }'
  done
  echo
  echo "input: $EVENTS events in a 4-partition topic (loaded by streamctl replay in ${REPLAY_SECS}s) and in one file; $(nproc) cores; load average before $LOAD_BEFORE, after $LOAD_AFTER; $(date -u '+%Y-%m-%d %H:%M') UTC"
} | tee "$DIR/results-kafka.md"
rm -rf "$DIR"/kafka-out-* "$DIR"/file-out-* "$DIR"/kafka-*.yaml
