#!/usr/bin/env bash
# make bench: movie impressions through pipelines/movie-impressions-local.yaml, and DuckDB on the
# same file doing the same job (15-minute tumbling COUNT/MAX per movie and user, CSV
# partitioned by hour and movie), measured in the same run. Also checks both produced the
# same rows. Results go to $DIR/results[-LABEL].md (copy them into BENCHMARKS.md with this
# command).
#
# usage: [USERS=N] [INTERVAL=3ms] [RUNS=3] scripts/bench.sh [EVENTS] [DIR]
#   USERS: distinct users (1000: the seed's 50 movies x 1000 users; 2000000 with INTERVAL=1ms
#   is the high-cardinality job, about a million keys open per 15-minute window).
set -euo pipefail
EVENTS=${1:-10000000}
DIR=${2:-out/bench}
BIN=${STREAMCTL:-target/release/streamctl}
CACHE=${STREAMCTL_CACHE:-$HOME/.cache/streamctl}
RUNS=${RUNS:-3}
USERS=${USERS:-1000}
INTERVAL=${INTERVAL:-3ms}
mkdir -p "$DIR" "$CACHE"
DIR=$(cd "$DIR" && pwd)
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/bench/lib.sh"
if [ "$USERS" = 1000 ] && [ "$INTERVAL" = 3ms ]; then
  LABEL=""
  INPUT="$DIR/impressions-$EVENTS.jsonl" # shared with the other bench scripts
else
  LABEL="-users$USERS-$INTERVAL"
  INPUT="$DIR/impressions-$EVENTS$LABEL.jsonl"
fi

if [ ! -s "$INPUT" ]; then
  echo "generating $EVENTS movie impressions (50 movies x $USERS users, $INTERVAL apart, up to 4 s out of order)…"
  "$BIN" generate movie_impressions --count "$EVENTS" --users "$USERS" --interval "$INTERVAL" \
    --disorder 4s -o "$INPUT.tmp"
  mv "$INPUT.tmp" "$INPUT"
fi
BYTES=$(stat -c %s "$INPUT")
ensure_duckdb

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
  measure "$DIR/streamctl-$1.log" env INPUT="$INPUT" OUTPUT="file://$out/" \
    "$BIN" run pipelines/movie-impressions-local.yaml --progress off
}
run_duckdb() {
  local out="$DIR/duckdb-out-$1"
  measure "$DIR/duckdb-$1.log" "$VENV/bin/python" "$DIR/duckdb_job.py" "$INPUT" "$out"
}

# Fresh output directories for every run: reusing freshly deleted ones makes ext4 hunt for
# free inodes and skews file-heavy runs. Old outputs are removed at the end.
rm -rf "$DIR"/streamctl-out-* "$DIR"/duckdb-out-*
sync
LOAD_BEFORE=$(load_average)
CALIBRATION=$(calibrate)
echo "calibration loop: ${CALIBRATION}s, load average $LOAD_BEFORE"
results=()
for i in $(seq 1 "$RUNS"); do
  read -r s_wall s_rss s_cpu < <(run_streamctl "$i")
  groups=$(peak_groups "$DIR/streamctl-$i.log")
  read -r d_wall d_rss d_cpu < <(run_duckdb "$i")
  results+=("$i $s_wall $s_rss $d_wall $d_rss ${groups:-0} $s_cpu $d_cpu")
  echo "run $i: streamctl ${s_wall}s ${s_cpu}s CPU ${s_rss}KB (at most ${groups:-?} groups open)   duckdb ${d_wall}s ${d_cpu}s CPU ${d_rss}KB"
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
  echo "| run | streamctl wall (s) | streamctl events/s | streamctl CPU (s) | streamctl peak RSS (MiB) | most open keys (key x window) | streamctl bytes per open key | DuckDB wall (s) | DuckDB events/s | DuckDB CPU (s) | DuckDB peak RSS (MiB) | streamctl/DuckDB events/s |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  for r in "${results[@]}"; do
    read -r i sw sr dw dr g sc dc <<<"$r"
    awk -v i="$i" -v sw="$sw" -v sr="$sr" -v dw="$dw" -v dr="$dr" -v g="$g" -v sc="$sc" -v dc="$dc" -v n="$EVENTS" \
      'BEGIN { printf "| %d | %.2f | %.2fM | %.2f | %.0f | %d | %s | %.2f | %.2fM | %.2f | %.0f | %.2fx |\n", i, sw, n/sw/1e6, sc, sr/1024, g, (g > 0 ? sprintf("%.0f", sr*1024/g) : "-"), dw, n/dw/1e6, dc, dr/1024, dw/sw }'
  done
  echo
  echo "input: $EVENTS events (50 movies x $USERS users, $INTERVAL apart), $BYTES bytes ($(awk -v b="$BYTES" -v n="$EVENTS" 'BEGIN{printf "%.1f", b/n}') bytes/event); $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ); calibration loop ${CALIBRATION}s before, $(calibrate)s after; load average $LOAD_BEFORE before, $(load_average) after"
  echo "bytes per open key: streamctl's peak RSS / the most keys (key x window) its window state held at once"
} | tee "$DIR/results$LABEL.md"
rm -rf "$DIR"/streamctl-out-* "$DIR"/duckdb-out-*
