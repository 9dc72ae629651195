#!/usr/bin/env bash
# make bench (second part): the movie-impressions job writing to the local S3 server
# (scripts/services/s3.sh: moto on 127.0.0.1) beside the same job writing to file://, in the
# same run, on the same input as scripts/bench.sh. Reports wall time, objects/s and MB/s of
# output for each, and checks both wrote the same rows. Results go to $DIR/results-s3.md.
#
# usage: scripts/bench-s3.sh [EVENTS] [DIR]
set -euo pipefail
EVENTS=${1:-10000000}
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

# The S3 server and its client (boto3) come from the service script.
eval "$(scripts/services/s3.sh start | sed 's/^/export /')"
CLIENT=(env "$S3_PYTHON" tests/s3_client.py)
BUCKET="bench-$$-$(date +%s)"
"${CLIENT[@]}" mkbucket "$BUCKET"

# Prints "wall_seconds".
wall() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }'
}

results=()
for i in $(seq 1 "$RUNS"); do
  out="$DIR/s3bench-file-$i"
  rm -rf "$out"
  f_wall=$(wall env INPUT="$INPUT" OUTPUT="file://$out/" "$BIN" run pipelines/movie-impressions-local.yaml --progress off)
  f_objects=$(find "$out" -type f | wc -l)
  f_bytes=$(find "$out" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  s_wall=$(wall env INPUT="$INPUT" OUTPUT="s3://$BUCKET/run-$i/" "$BIN" run pipelines/movie-impressions-local.yaml --progress off)
  read -r s_objects s_bytes < <("${CLIENT[@]}" objects "$BUCKET" "run-$i/" | python3 -c '
import json, sys
n = b = 0
for line in sys.stdin:
    o = json.loads(line); n += 1; b += o["size"]
print(n, b)')
  results+=("$i $f_wall $f_objects $f_bytes $s_wall $s_objects $s_bytes")
  echo "run $i: file:// ${f_wall}s ($f_objects objects)   s3:// ${s_wall}s ($s_objects objects)"
done

# Same rows in both (multisets of CSV data rows). The program is an argument: a heredoc
# would take the place of the pipe on standard input.
COMPARE=$(cat <<'PY'
import collections, glob, json, os, sys
s3 = collections.Counter()
for line in sys.stdin:
    s3.update(json.loads(line)["text"].splitlines()[1:])
local = collections.Counter()
for f in glob.glob(os.path.join(sys.argv[1], "**", "*.csv"), recursive=True):
    local.update(open(f).read().splitlines()[1:])
print(f"rows: file:// {sum(local.values())}, s3:// {sum(s3.values())}, identical: {local == s3}")
sys.exit(0 if local == s3 else 1)
PY
)
"${CLIENT[@]}" objects "$BUCKET" "run-1/" | python3 -c "$COMPARE" "$DIR/s3bench-file-1"

{
  echo "| run | file:// wall (s) | file:// objects/s | file:// MB/s | s3:// wall (s) | s3:// objects/s | s3:// MB/s |"
  echo "|---|---|---|---|---|---|---|"
  for r in "${results[@]}"; do
    read -r i fw fo fb sw so sb <<<"$r"
    awk -v i="$i" -v fw="$fw" -v fo="$fo" -v fb="$fb" -v sw="$sw" -v so="$so" -v sb="$sb" \
      'BEGIN { printf "| %d | %.2f | %.0f | %.1f | %.2f | %.0f | %.1f |\n", i, fw, fo/fw, fb/fw/1e6, sw, so/sw, sb/sw/1e6 }'
  done
  echo
  read -r _ _ fo fb _ _ _ <<<"${results[0]}"
  echo "input: $EVENTS events; output per run: $fo objects, $fb bytes (CSV); S3 server: moto (scripts/services/s3.sh) on 127.0.0.1; $(nproc) cores; $(date -u +%Y-%m-%d)"
} | tee "$DIR/results-s3.md"
rm -rf "$DIR"/s3bench-file-*
