#!/usr/bin/env bash
# make bench-kinesis: the movie-impressions job reading a pre-loaded 4-shard Kinesis stream on
# the local Kinesis server (scripts/services/kinesis.sh: kinesalite on 127.0.0.1) with
# --bounded, beside the same job reading the same records from a file, in the same run.
# The stream is loaded by `streamctl replay --to kinesis://` (PutRecords batches of 500, the
# sink's code), which is timed too. Reports events/s for each and checks both wrote the same rows. Results go to
# $DIR/results-kinesis.md.
#
# usage: [STREAMCTL=BIN] [LOADER=BIN] [RUNS=3] scripts/bench-kinesis.sh [EVENTS] [DIR]
set -euo pipefail
EVENTS=${1:-200000}
DIR=${2:-out/bench}
BIN=${STREAMCTL:-target/release/streamctl}
# The streamctl that loads the stream (`replay --to kinesis://`); the same binary by default.
LOADER=${LOADER:-$BIN}
RUNS=${RUNS:-3}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
INPUT="$DIR/impressions-$EVENTS.jsonl"
if [ ! -s "$INPUT" ]; then
  "$BIN" generate movie_impressions --count "$EVENTS" --disorder 4s -o "$INPUT.tmp"
  mv "$INPUT.tmp" "$INPUT"
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
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

# Prints "wall_seconds cpu_seconds" (user + system) of a command.
timed() {
  local t
  t=$(mktemp)
  /usr/bin/time -f "%e %U %S" -o "$t" "$@" >/dev/null
  awk '{ printf "%.2f %.2f\n", $1, $2 + $3 }' "$t"
  rm -f "$t"
}

# CPU seconds the Kinesis server (one Node process, shared: other users' calls count too)
# has used so far, to see whether it bounds the read.
KINESIS_PID=$(cat "${STREAMCTL_CACHE:-$HOME/.cache/streamctl}/run/kinesis.pid" 2>/dev/null || true)
server_cpu() {
  if [ -n "$KINESIS_PID" ] && [ -r "/proc/$KINESIS_PID/stat" ]; then
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$KINESIS_PID/stat"
  else
    echo 0
  fi
}

load_wall=$(wall "$LOADER" replay "$INPUT" --to "kinesis://$STREAM" --key userId --progress off)
echo "loaded $EVENTS records into $STREAM (4 shards) in ${load_wall}s"

results=()
for i in $(seq 1 "$RUNS"); do
  f_out="$DIR/kbench-file-$i"
  k_out="$DIR/kbench-kinesis-$i"
  rm -rf "$f_out" "$k_out"
  read -r f_wall f_cpu < <(timed env INPUT="$INPUT" OUTPUT="file://$f_out/" "$BIN" run pipelines/movie-impressions-local.yaml --progress off)
  server_before=$(server_cpu)
  read -r k_wall k_cpu < <(timed env STREAM="$STREAM" OUTPUT="file://$k_out/" "$BIN" run pipelines/movie-impressions-kinesis.yaml --bounded --progress off)
  k_server=$(awk -v a="$server_before" -v b="$(server_cpu)" 'BEGIN { printf "%.2f", b - a }')
  results+=("$i $f_wall $f_cpu $k_wall $k_cpu $k_server")
  echo "run $i: file ${f_wall}s (${f_cpu}s CPU)   kinesis ${k_wall}s (streamctl ${k_cpu}s CPU, kinesalite ${k_server}s CPU)"
done

# The server's read speed with another client: boto3 reading every shard (10000 per call).
read_wall=$(wall "${CLIENT[@]}" read "$STREAM")

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
  echo "| run | file wall (s) | file events/s | file CPU (s) | kinesis --bounded wall (s) | kinesis events/s | streamctl CPU (s) | kinesalite CPU (s) |"
  echo "|---|---|---|---|---|---|---|---|"
  for r in "${results[@]}"; do
    read -r i fw fc kw kc ks <<<"$r"
    awk -v i="$i" -v fw="$fw" -v fc="$fc" -v kw="$kw" -v kc="$kc" -v ks="$ks" -v n="$EVENTS" \
      'BEGIN { printf "| %d | %.2f | %.0f | %.2f | %.2f | %.0f | %.2f | %.2f |\n", i, fw, n/fw, fc, kw, n/kw, kc, ks }'
  done
  echo
  awk -v n="$EVENTS" -v w="$load_wall" 'BEGIN { printf "loading with streamctl replay --to kinesis:// (PutRecords, 4 shards): %.2f s, %.0f records/s\n", w, n/w }'
  awk -v n="$EVENTS" -v w="$read_wall" 'BEGIN { printf "reading the stream with boto3 (tests/kinesis_client.py read, GetRecords of up to 10000): %.2f s, %.0f records/s\n", w, n/w }'
  echo
  echo "input: $EVENTS events; stream: 4 shards on kinesalite (scripts/services/kinesis.sh) on 127.0.0.1; $(nproc) cores; load before: $LOAD_BEFORE; $(date -u +%Y-%m-%d)"
} | tee "$DIR/results-kinesis.md"
rm -rf "$DIR"/kbench-file-* "$DIR"/kbench-kinesis-*
