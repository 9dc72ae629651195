#!/usr/bin/env bash
# make bench-kinesis: the movie-impressions job reading a pre-loaded 4-shard Kinesis stream on
# the local Kinesis server (scripts/services/kinesis.sh: kinesalite on 127.0.0.1) with
# --bounded, beside the same job reading the same records from a file, in the same run.
# The stream is loaded by streamctl's own Kinesis sink (a file → kinesis pipeline), which is
# timed too. Reports events/s for each and checks both wrote the same rows. Results go to
# $DIR/results-kinesis.md.
#
# usage: scripts/bench-kinesis.sh [EVENTS] [DIR]
set -euo pipefail
EVENTS=${1:-200000}
DIR=${2:-out/bench}
BIN=${STREAMCTL:-target/release/streamctl}
RUNS=${RUNS:-3}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
INPUT="$DIR/impressions-$EVENTS.jsonl"
if [ ! -s "$INPUT" ]; then
  "$BIN" generate movie_impressions --count "$EVENTS" --disorder 4s -o "$INPUT.tmp"
  mv "$INPUT.tmp" "$INPUT"
fi

eval "$(scripts/services/kinesis.sh start | sed 's/^/export /')"
CLIENT=(env "$KINESIS_PYTHON" tests/kinesis_client.py)
STREAM="bench-$$-$(date +%s)"
"${CLIENT[@]}" create "$STREAM" 4
trap '"${CLIENT[@]}" delete "$STREAM" || true' EXIT

# Prints "wall_seconds".
wall() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }'
}

LOADER="$DIR/kinesis-load.yaml"
cat >"$LOADER" <<YAML
version: 1
name: kinesis-bench-load
sources:
  impressions:
    type: file
    path: \${INPUT}
    schema: {movieId: string, userId: string, timestamp: timestamp_ms}
sinks:
  stream:
    type: kinesis
    inputs: [impressions]
    stream: \${STREAM}
    partition_key: userId
    format: json
YAML
load_wall=$(wall env INPUT="$INPUT" STREAM="$STREAM" "$BIN" run "$LOADER" --progress off)
echo "loaded $EVENTS records into $STREAM (4 shards) in ${load_wall}s"

results=()
for i in $(seq 1 "$RUNS"); do
  f_out="$DIR/kbench-file-$i"
  k_out="$DIR/kbench-kinesis-$i"
  rm -rf "$f_out" "$k_out"
  f_wall=$(wall env INPUT="$INPUT" OUTPUT="file://$f_out/" "$BIN" run pipelines/movie-impressions-local.yaml --progress off)
  k_wall=$(wall env STREAM="$STREAM" OUTPUT="file://$k_out/" "$BIN" run pipelines/movie-impressions-kinesis.yaml --bounded --progress off)
  results+=("$i $f_wall $k_wall")
  echo "run $i: file ${f_wall}s   kinesis ${k_wall}s"
done

# Same rows in both (multisets of CSV data rows).
python3 - "$DIR/kbench-file-1" "$DIR/kbench-kinesis-1" <<'PY'
import collections, glob, os, sys
def rows(d):
    c = collections.Counter()
    for f in glob.glob(os.path.join(d, "**", "*.csv"), recursive=True):
        c.update(open(f).read().splitlines()[1:])
    return c
a, b = rows(sys.argv[1]), rows(sys.argv[2])
print(f"rows: file {sum(a.values())}, kinesis {sum(b.values())}, identical: {a == b}")
sys.exit(0 if a == b else 1)
PY

{
  echo "| run | file wall (s) | file events/s | kinesis --bounded wall (s) | kinesis events/s |"
  echo "|---|---|---|---|---|"
  for r in "${results[@]}"; do
    read -r i fw kw <<<"$r"
    awk -v i="$i" -v fw="$fw" -v kw="$kw" -v n="$EVENTS" \
      'BEGIN { printf "| %d | %.2f | %.0f | %.2f | %.0f |\n", i, fw, n/fw, kw, n/kw }'
  done
  echo
  awk -v n="$EVENTS" -v w="$load_wall" 'BEGIN { printf "loading with the kinesis sink (PutRecords, 4 shards): %.2f s, %.0f records/s\n", w, n/w }'
  echo
  echo "input: $EVENTS events; stream: 4 shards on kinesalite (scripts/services/kinesis.sh) on 127.0.0.1; $(nproc) cores; $(date -u +%Y-%m-%d)"
} | tee "$DIR/results-kinesis.md"
rm -rf "$DIR"/kbench-file-* "$DIR"/kbench-kinesis-*
