#!/usr/bin/env bash
# make bench (Kafka part): the movie-impressions job consuming a pre-loaded 4-partition topic
# on the local test broker (scripts/services/kafka.sh), beside the same job reading the same
# records from a file, in the same run. Checks both produce the same rows. Results go to
# $DIR/results-kafka.md (copy them into BENCHMARKS.md with this command).
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

measure() {
  /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1
}
run_kafka() {
  local out="$DIR/kafka-out-$1"
  # A new group each run: `start_from: committed` then starts at the beginning.
  sed "s/group_id: movie-impressions-agg/group_id: bench-$$-$1/" pipelines/movie-impressions.yaml >"$DIR/kafka-$1.yaml"
  measure env KAFKA_BROKERS="$KAFKA_BROKERS" TOPIC="$TOPIC" OUTPUT="file://$out/" \
    "$BIN" run "$DIR/kafka-$1.yaml" --bounded --progress off
}
run_file() {
  local out="$DIR/file-out-$1"
  measure env INPUT="$INPUT" OUTPUT="file://$out/" "$BIN" run pipelines/movie-impressions-local.yaml --progress off
}

rm -rf "$DIR"/kafka-out-* "$DIR"/file-out-*
results=()
for i in $(seq 1 "$RUNS"); do
  read -r k_wall k_rss < <(run_kafka "$i")
  read -r f_wall f_rss < <(run_file "$i")
  results+=("$i $k_wall $k_rss $f_wall $f_rss")
  echo "run $i: kafka ${k_wall}s ${k_rss}KB   file ${f_wall}s ${f_rss}KB"
done

# The same rows from both sources.
python3 - "$DIR/kafka-out-1" "$DIR/file-out-1" <<'PY'
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
a, b = rows(sys.argv[1]), rows(sys.argv[2])
print(f"rows: kafka {sum(a.values())}, file {sum(b.values())}, identical: {a == b}")
sys.exit(0 if a == b else 1)
PY

{
  echo "| run | Kafka wall (s) | Kafka events/s | Kafka peak RSS (MiB) | file wall (s) | file events/s | file peak RSS (MiB) |"
  echo "|---|---|---|---|---|---|---|"
  for r in "${results[@]}"; do
    read -r i kw kr fw fr <<<"$r"
    awk -v i="$i" -v kw="$kw" -v kr="$kr" -v fw="$fw" -v fr="$fr" -v n="$EVENTS" \
      'BEGIN { printf "| %d | %.2f | %.2fM | %.0f | %.2f | %.2fM | %.0f |\n", i, kw, n/kw/1e6, kr/1024, fw, n/fw/1e6, fr/1024 }'
  done
  echo
  echo "input: $EVENTS events in a 4-partition topic (loaded by streamctl replay in ${REPLAY_SECS}s) and in one file; $(nproc) cores; $(date -u +%Y-%m-%d)"
} | tee "$DIR/results-kafka.md"
rm -rf "$DIR"/kafka-out-* "$DIR"/file-out-* "$DIR"/kafka-*.yaml
