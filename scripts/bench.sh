#!/usr/bin/env bash
# make bench: 10M movie impressions through pipelines/movie-impressions-local.yaml, and DuckDB
# on the same file doing the same job (15-minute tumbling COUNT/MAX per movie and user, CSV
# partitioned by hour and movie), measured in the same run. Also checks both produced the
# same rows. Results go to $DIR/results.md (copy them into BENCHMARKS.md with this command).
#
# usage: scripts/bench.sh [EVENTS] [DIR]
set -euo pipefail
EVENTS=${1:-10000000}
DIR=${2:-out/bench}
BIN=${STREAMCTL:-target/release/streamctl}
CACHE=${STREAMCTL_CACHE:-$HOME/.cache/streamctl}
DUCKDB_VERSION=1.4.1
RUNS=${RUNS:-3}
mkdir -p "$DIR" "$CACHE"
DIR=$(cd "$DIR" && pwd)
INPUT="$DIR/impressions-$EVENTS.jsonl"

if [ ! -s "$INPUT" ]; then
  echo "generating $EVENTS movie impressions (50 movies x 1000 users, 3 ms apart, up to 4 s out of order)…"
  "$BIN" generate movie_impressions --count "$EVENTS" --disorder 4s -o "$INPUT.tmp"
  mv "$INPUT.tmp" "$INPUT"
fi
BYTES=$(stat -c %s "$INPUT")

# The peer: DuckDB (Python package) in a venv owned by this project.
VENV="$CACHE/venv-bench"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import duckdb" 2>/dev/null; then
  echo "installing duckdb $DUCKDB_VERSION into $VENV…"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "duckdb==$DUCKDB_VERSION"
fi

# Runs a command, prints "wall_seconds max_rss_kb" (GNU time when present, else Python).
measure() {
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1
  else
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.time(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"{time.time() - t:.2f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
PY
  fi
}

cat > "$DIR/duckdb_job.py" <<'PY'
import sys, duckdb
src, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute(f"""
COPY (
  SELECT strftime(make_timestamp(w * 900000 * 1000), '%Y-%m-%d--%H') AS dt,
         movieId, userId, count(*) AS impressions, max("timestamp") AS latestImpression
  FROM (SELECT movieId, userId, "timestamp", "timestamp" // 900000 AS w
        FROM read_json('{src}', format = 'newline_delimited',
                       columns = {{movieId: 'VARCHAR', userId: 'VARCHAR', "timestamp": 'BIGINT'}}))
  GROUP BY w, movieId, userId
) TO '{out}' (FORMAT CSV, HEADER, PARTITION_BY (dt, movieId))
""")
PY

run_streamctl() {
  local out="$DIR/streamctl-out-$1"
  measure env INPUT="$INPUT" OUTPUT="file://$out/" "$BIN" run pipelines/movie-impressions-local.yaml --progress off
}
run_duckdb() {
  local out="$DIR/duckdb-out-$1"
  measure "$VENV/bin/python" "$DIR/duckdb_job.py" "$INPUT" "$out"
}

# Fresh output directories for every run: reusing freshly deleted ones makes ext4 hunt for
# free inodes and skews file-heavy runs. Old outputs are removed at the end.
rm -rf "$DIR"/streamctl-out-* "$DIR"/duckdb-out-*
sync
# The machine's speed varies (shared hosts): a fixed CPU-bound loop timed before the runs
# puts every number in context (≈ 2.9 s on this machine when it is quiet).
calibrate() {
  python3 -c 'import time
t = time.time(); s = 0
for i in range(20_000_000): s += i
print(f"{time.time() - t:.2f}")'
}
CALIBRATION=$(calibrate)
echo "calibration loop: ${CALIBRATION}s"
results=()
for i in $(seq 1 "$RUNS"); do
  read -r s_wall s_rss < <(run_streamctl "$i")
  read -r d_wall d_rss < <(run_duckdb "$i")
  results+=("$i $s_wall $s_rss $d_wall $d_rss")
  echo "run $i: streamctl ${s_wall}s ${s_rss}KB   duckdb ${d_wall}s ${d_rss}KB"
done

# Same rows from both engines (multisets of movieId,userId,impressions,latestImpression).
"$VENV/bin/python" - "$DIR/streamctl-out-1" "$DIR/duckdb-out-1" <<'PY'
import collections, csv, glob, os, sys
def rows(root, add_movie):
    c = collections.Counter()
    for f in glob.glob(os.path.join(root, "**", "*.csv"), recursive=True):
        movie = os.path.basename(os.path.dirname(f)).removeprefix("movieId=")
        for r in csv.DictReader(open(f)):
            c[(r.get("movieId", movie), r["userId"], int(r["impressions"]), int(r["latestImpression"]))] += 1
    return c
a, b = rows(sys.argv[1], False), rows(sys.argv[2], True)
print(f"rows: streamctl {sum(a.values())}, duckdb {sum(b.values())}, identical: {a == b}")
sys.exit(0 if a == b else 1)
PY

{
  echo "| run | streamctl wall (s) | streamctl events/s | streamctl peak RSS (MiB) | DuckDB wall (s) | DuckDB events/s | DuckDB peak RSS (MiB) |"
  echo "|---|---|---|---|---|---|---|"
  for r in "${results[@]}"; do
    read -r i sw sr dw dr <<<"$r"
    awk -v i="$i" -v sw="$sw" -v sr="$sr" -v dw="$dw" -v dr="$dr" -v n="$EVENTS" \
      'BEGIN { printf "| %d | %.2f | %.2fM | %.0f | %.2f | %.2fM | %.0f |\n", i, sw, n/sw/1e6, sr/1024, dw, n/dw/1e6, dr/1024 }'
  done
  echo
  echo "input: $EVENTS events, $BYTES bytes ($(awk -v b="$BYTES" -v n="$EVENTS" 'BEGIN{printf "%.1f", b/n}') bytes/event); $(nproc) cores; $(date -u +%Y-%m-%d); calibration loop ${CALIBRATION}s before, $(calibrate)s after"
} | tee "$DIR/results.md"
rm -rf "$DIR"/streamctl-out-* "$DIR"/duckdb-out-*
