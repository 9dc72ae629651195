#!/usr/bin/env bash
# make bench (part 2): the movie-impressions local job on Apache Flink 1.20 beside streamctl, in
# the same run on the same input: streamctl runs pipelines/movie-impressions-local.yaml; Flink
# runs the SQL of `streamctl plan --target flink-sql` for the same pipeline (the PyPI Flink of
# scripts/flink.sh, local mini-cluster, parallelism 1 and 2). Checks that all produce the same
# rows. Flink's end-to-end time (JVM start, planning, job) and its steady-state time (from job
# submission to its end) are reported separately. Results go to $DIR/results-flink.md.
#
# usage: scripts/bench-flink.sh [EVENTS] [DIR]
set -euo pipefail
EVENTS=${1:-10000000}
DIR=${2:-out/bench}
BIN=${STREAMCTL:-target/release/streamctl}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
INPUT="$DIR/impressions-$EVENTS.jsonl"
PIPELINE=pipelines/movie-impressions-local.yaml
PY=$(scripts/flink.sh python)

if [ ! -s "$INPUT" ]; then
  echo "generating $EVENTS movie impressions (50 movies x 1000 users, 3 ms apart, up to 4 s out of order)…"
  "$BIN" generate movie_impressions --count "$EVENTS" --disorder 4s -o "$INPUT.tmp"
  mv "$INPUT.tmp" "$INPUT"
fi

# "wall_seconds max_rss_kb" of a command (GNU time).
measure() {
  /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1
}

rm -rf "$DIR"/flink-bench-* "$DIR"/streamctl-flink-bench
sync
read -r s_wall s_rss < <(measure env INPUT="$INPUT" OUTPUT="file://$DIR/streamctl-flink-bench/" \
  "$BIN" run "$PIPELINE" --progress off)
echo "streamctl: ${s_wall}s, peak RSS ${s_rss} KB"

flink_rows=()
for p in 1 2; do
  out="$DIR/flink-bench-p$p"
  INPUT="$INPUT" OUTPUT="file://$out/" "$BIN" plan "$PIPELINE" --target flink-sql > "$DIR/flink-bench-p$p.sql" 2>/dev/null
  echo "[{\"name\": \"p$p\", \"script\": \"$DIR/flink-bench-p$p.sql\", \"settings\": {\"parallelism.default\": \"$p\"}}]" > "$DIR/flink-bench-p$p.json"
  start=$(date +%s.%N)
  "$PY" src/flink/sql_runner.py --batch "$DIR/flink-bench-p$p.json" 2>"$DIR/flink-bench-p$p.log" > "$DIR/flink-bench-p$p.out"
  end=$(date +%s.%N)
  line=$(grep '"name"' "$DIR/flink-bench-p$p.out")
  echo "flink p$p: $line"
  ok=$(echo "$line" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["ok"])')
  [ "$ok" = "True" ] || { echo "Flink failed; see $DIR/flink-bench-p$p.log" >&2; exit 1; }
  read -r job rss < <(echo "$line" | "$PY" -c 'import json,sys; j=json.load(sys.stdin); print(j["job_seconds"], j["jvm_peak_rss_kb"])')
  flink_rows+=("$p $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.2f", b-a}') $job $rss")
done

# The same rows from every run (streamctl writes a header; Flink writes none).
"$PY" - "$DIR/streamctl-flink-bench" "$DIR/flink-bench-p1" "$DIR/flink-bench-p2" <<'PY'
import collections, csv, os, sys
def rows(root):
    c = collections.Counter()
    for d, _, files in os.walk(root):
        for f in files:
            if f.startswith((".", "_")):
                continue
            r = list(csv.reader(open(os.path.join(d, f))))
            if r and r[0] == ["movieId", "userId", "impressions", "latestImpression"]:
                r = r[1:]
            c.update(tuple(x) for x in r)
    return c
s, p1, p2 = (rows(a) for a in sys.argv[1:])
print(f"rows: streamctl {sum(s.values())}, flink p1 {sum(p1.values())}, flink p2 {sum(p2.values())}, identical: {s == p1 == p2}")
sys.exit(0 if s == p1 == p2 else 1)
PY

{
  echo "| engine | end-to-end wall (s) | end-to-end events/s | steady-state (job) time (s) | steady-state events/s | peak RSS (MiB) | Flink time / streamctl time (end-to-end) |"
  echo "|---|---|---|---|---|---|---|"
  awk -v w="$s_wall" -v r="$s_rss" -v n="$EVENTS" \
    'BEGIN { printf "| streamctl | %.2f | %.2fM | %.2f | %.2fM | %.0f | 1.0 |\n", w, n/w/1e6, w, n/w/1e6, r/1024 }'
  for row in "${flink_rows[@]}"; do
    read -r p e2e job rss <<<"$row"
    awk -v p="$p" -v e="$e2e" -v j="$job" -v r="$rss" -v n="$EVENTS" -v s="$s_wall" \
      'BEGIN { printf "| Flink 1.20.5, parallelism %d | %.2f | %.2fM | %.2f | %.2fM | %.0f | %.1fx |\n", p, e, n/e/1e6, j, n/j/1e6, r/1024, e/s }'
  done
  echo
  echo "input: $EVENTS events ($(stat -c %s "$INPUT") bytes); $(nproc) cores; $(date -u +%Y-%m-%d). Flink: the PyPI apache-flink 1.20.5 local mini-cluster, Java $(java -version 2>&1 | head -1 | cut -d'"' -f2); end-to-end includes the JVM start and planning, steady-state is job submission to job end; peak RSS is the Flink JVM's VmHWM."
} | tee "$DIR/results-flink.md"
rm -rf "$DIR"/flink-bench-p1 "$DIR"/flink-bench-p2 "$DIR"/streamctl-flink-bench
