#!/usr/bin/env bash
# make bench: sliding and session windows on skewed keys (Nexmark-shaped bids: 10 hot auctions
# and bidders get half the bids, the rest spread over a long tail of USERS), each beside DuckDB
# doing the same job on the same file in the same run, with peak RSS and bytes per open key.
# Checks that both produce the same rows. Results go to $DIR/results-windows.md.
#
#   sliding (Nexmark q5 shape): bids per auction, 10 s windows sliding by 2 s
#     (scripts/bench/bids-sliding.yaml)
#   session (Nexmark q11 shape): bids per bidder, sessions with a 10 s gap
#     (scripts/bench/bids-sessions.yaml)
#
# usage: [USERS=20000] [RUNS=3] scripts/bench-windows.sh [EVENTS] [DIR]
set -euo pipefail
EVENTS=${1:-10000000}
DIR=${2:-out/bench}
BIN=${STREAMCTL:-target/release/streamctl}
CACHE=${STREAMCTL_CACHE:-$HOME/.cache/streamctl}
RUNS=${RUNS:-3}
USERS=${USERS:-20000}
mkdir -p "$DIR" "$CACHE"
DIR=$(cd "$DIR" && pwd)
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/bench/lib.sh"
INPUT="$DIR/bids-$EVENTS-users$USERS.jsonl"

if [ ! -s "$INPUT" ]; then
  echo "generating $EVENTS bids (half for 10 hot auctions and bidders, the rest over $USERS; 1 ms apart, up to 4 s out of order)…"
  "$BIN" generate bids --count "$EVENTS" --users "$USERS" --hot-share 0.5 --interval 1ms \
    --disorder 4s -o "$INPUT.tmp"
  mv "$INPUT.tmp" "$INPUT"
fi
BYTES=$(stat -c %s "$INPUT")
ensure_duckdb

# The same jobs in DuckDB: every window of a record (sliding), and gaps-and-islands sessions
# (a bid more than the gap after the bidder's previous one starts a new session; touching
# counts, as in streamctl and Flink).
cat > "$DIR/duckdb_windows.py" <<'PY'
import sys, duckdb
job, src, out = sys.argv[1], sys.argv[2], sys.argv[3]
bids = f"""read_json('{src}', format = 'newline_delimited',
    columns = {{auction: 'BIGINT', bidder: 'BIGINT', price: 'BIGINT', channel: 'VARCHAR', "timestamp": 'BIGINT'}})"""
queries = {
    "sliding": f"""
        SELECT window_end - 10000 AS window_start, window_end, auction, count(*) AS bids
        FROM (SELECT auction, ("timestamp" // 2000) * 2000 + k * 2000 AS window_end
              FROM {bids}, range(1, 6) AS r(k))
        GROUP BY ALL""",
    "sessions": f"""
        WITH marked AS (
          SELECT bidder, "timestamp" AS ts,
                 CASE WHEN "timestamp" - lag("timestamp") OVER w <= 10000 THEN 0 ELSE 1 END AS new
          FROM {bids} WINDOW w AS (PARTITION BY bidder ORDER BY "timestamp")),
        numbered AS (
          SELECT bidder, ts, sum(new) OVER (PARTITION BY bidder ORDER BY ts
                                            ROWS UNBOUNDED PRECEDING) AS session
          FROM marked)
        SELECT min(ts) AS window_start, max(ts) + 10000 AS window_end, bidder, count(*) AS bids
        FROM numbered GROUP BY bidder, session""",
}
duckdb.connect().execute(f"COPY ({queries[job]}) TO '{out}' (FORMAT CSV, HEADER)")
PY

# Same rows from both engines: multisets of (window start, window end, key, count), compared
# by fingerprint in DuckDB (streamctl writes window bounds as `yyyy-MM-dd HH:mm:ss.SSS` in UTC).
cat > "$DIR/compare_windows.py" <<'PY'
import sys, duckdb
key, ours, theirs = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
a = f"""SELECT epoch_ms(window_start::TIMESTAMP) AS s, epoch_ms(window_end::TIMESTAMP) AS e,
               {key}::BIGINT AS k, bids::BIGINT AS n
        FROM read_csv('{ours}', header = true, all_varchar = true)"""
b = f"""SELECT window_start::BIGINT, window_end::BIGINT, {key}::BIGINT, bids::BIGINT
        FROM read_csv('{theirs}', header = true, all_varchar = true)"""
# Multiset fingerprints (row count, sum of row hashes): one pass over each file, little memory.
fingerprint = "SELECT count(*), sum(hash(s, e, k, n)::HUGEINT) FROM ({}) AS t(s, e, k, n)"
(rows_a, sum_a), (rows_b, sum_b) = (con.execute(fingerprint.format(q)).fetchone() for q in (a, b))
differ = (rows_a, sum_a) != (rows_b, sum_b)
print(f"rows: streamctl {rows_a}, duckdb {rows_b}, identical: {not differ}")
sys.exit(1 if differ else 0)
PY

LOAD_BEFORE=$(load_average)
CALIBRATION=$(calibrate)
echo "calibration loop: ${CALIBRATION}s, load average $LOAD_BEFORE"
results=()
for job in sliding sessions; do
  key=$([ "$job" = sliding ] && echo auction || echo bidder)
  for i in $(seq 1 "$RUNS"); do
    rm -f "$DIR/streamctl-$job.csv" "$DIR/duckdb-$job.csv"
    read -r s_wall s_rss s_cpu < <(measure "$DIR/streamctl-$job-$i.log" env INPUT="$INPUT" \
      OUTPUT="$DIR/streamctl-$job.csv" "$BIN" run "scripts/bench/bids-$job.yaml" --progress off)
    groups=$(peak_groups "$DIR/streamctl-$job-$i.log")
    read -r d_wall d_rss d_cpu < <(measure "$DIR/duckdb-$job-$i.log" "$VENV/bin/python" \
      "$DIR/duckdb_windows.py" "$job" "$INPUT" "$DIR/duckdb-$job.csv")
    results+=("$job $i $s_wall $s_rss $d_wall $d_rss ${groups:-0} $s_cpu $d_cpu")
    echo "$job run $i: streamctl ${s_wall}s ${s_cpu}s CPU ${s_rss}KB (at most ${groups:-?} groups open)   duckdb ${d_wall}s ${d_cpu}s CPU ${d_rss}KB"
    if [ "$i" = 1 ]; then
      "$VENV/bin/python" "$DIR/compare_windows.py" "$key" "$DIR/streamctl-$job.csv" "$DIR/duckdb-$job.csv"
    fi
  done
done
rm -f "$DIR"/streamctl-sliding.csv "$DIR"/streamctl-sessions.csv "$DIR"/duckdb-sliding.csv "$DIR"/duckdb-sessions.csv

{
  echo "| job | run | streamctl wall (s) | streamctl events/s | streamctl CPU (s) | streamctl peak RSS (MiB) | most open keys (key x window) | streamctl bytes per open key | DuckDB wall (s) | DuckDB events/s | DuckDB CPU (s) | DuckDB peak RSS (MiB) | streamctl/DuckDB events/s |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for r in "${results[@]}"; do
    read -r job i sw sr dw dr g sc dc <<<"$r"
    awk -v job="$job" -v i="$i" -v sw="$sw" -v sr="$sr" -v dw="$dw" -v dr="$dr" -v g="$g" -v sc="$sc" -v dc="$dc" -v n="$EVENTS" \
      'BEGIN { printf "| %s | %d | %.2f | %.2fM | %.2f | %.0f | %d | %s | %.2f | %.2fM | %.2f | %.0f | %.2fx |\n", job, i, sw, n/sw/1e6, sc, sr/1024, g, (g > 0 ? sprintf("%.0f", sr*1024/g) : "-"), dw, n/dw/1e6, dc, dr/1024, dw/sw }'
  done
  echo
  echo "input: $EVENTS bids (half for 10 hot auctions and bidders, the rest over $USERS; 1 ms apart, up to 4 s out of order), $BYTES bytes; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ); calibration loop ${CALIBRATION}s before, $(calibrate)s after; load average $LOAD_BEFORE before, $(load_average) after"
} | tee "$DIR/results-windows.md"
