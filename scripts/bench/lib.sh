# Shared by the bench scripts (sourced): the DuckDB peer's venv, timing with peak RSS, the
# machine-speed calibration loop, and peak open window groups from a run's summary.
# Expects CACHE (the project's install cache) to be set.

DUCKDB_VERSION=1.4.1
VENV="$CACHE/venv-bench"

# The peer: DuckDB (Python package) in a venv owned by this project.
ensure_duckdb() {
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import duckdb" 2>/dev/null; then
    echo "installing duckdb $DUCKDB_VERSION into $VENV…"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "duckdb==$DUCKDB_VERSION"
  fi
}

# measure LOG CMD…: runs CMD (stdout dropped, stderr to LOG) and prints
# "wall_seconds max_rss_kb cpu_seconds" (GNU time when present, else Python). CPU seconds
# (user + system) say more than wall time when other work shares the cores.
measure() {
  local log=$1
  shift
  if [ -x /usr/bin/time ]; then
    local t
    t=$(mktemp)
    /usr/bin/time -o "$t" -f "%e %M %U %S" "$@" >/dev/null 2>"$log"
    tail -1 "$t" | awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }'
    rm -f "$t"
  else
    python3 - "$log" "$@" <<'PY'
import resource, subprocess, sys, time
t = time.time()
with open(sys.argv[1], "w") as log:
    subprocess.run(sys.argv[2:], check=True, stdout=subprocess.DEVNULL, stderr=log)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{time.time() - t:.2f} {u.ru_maxrss} {u.ru_utime + u.ru_stime:.2f}")
PY
  fi
}

# The most window groups (key × window) a streamctl run held open at once, from its summary
# ("window state: at most 1234 groups open at once").
peak_groups() {
  sed -n 's/.*window state: at most \([0-9]*\) group.*/\1/p' "$1" | tail -1
}

# The machine's speed varies (shared hosts): a fixed CPU-bound loop timed before and after the
# runs puts every number in context (≈ 2.9 s on this machine when it is quiet).
calibrate() {
  python3 -c 'import time
t = time.time(); s = 0
for i in range(20_000_000): s += i
print(f"{time.time() - t:.2f}")'
}

# The 1-minute load average (other engineers' builds share the 2 cores).
load_average() {
  cut -d' ' -f1 /proc/loadavg
}
