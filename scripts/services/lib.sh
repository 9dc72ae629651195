# Shared helpers for scripts/services/<name>.sh: each service script installs its server
# (cached under $STREAMCTL_CACHE), starts it on 127.0.0.1 if it is not running, waits until it
# answers, and prints KEY=VALUE lines (endpoints, credentials) for tests to read.
#
# Contract for every scripts/services/<name>.sh:
#   <name>.sh start   idempotent: install if needed, start if not running, print KEY=VALUE
#   <name>.sh stop    stop the instance this machine runs (by the pid file it wrote)
#   <name>.sh env     print KEY=VALUE without starting anything
# One instance per machine is shared by every test and test process; tests use unique names
# (buckets, topics, streams) and never reset the whole server.
set -euo pipefail

STREAMCTL_CACHE=${STREAMCTL_CACHE:-$HOME/.cache/streamctl}
RUN_DIR="$STREAMCTL_CACHE/run"
mkdir -p "$STREAMCTL_CACHE" "$RUN_DIR"

# Serialises installs and starts of one service across concurrent test processes.
svc_lock() {
  exec 9>"$RUN_DIR/$1.lock"
  flock 9
}

# Whether something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Waits up to $2 seconds (default 30) for port $1; on timeout prints the service's log.
wait_port() {
  local port=$1 limit=${2:-30} name=${3:-service}
  for _ in $(seq 1 $((limit * 10))); do
    port_open "$port" && return 0
    sleep 0.1
  done
  echo "$name did not start listening on 127.0.0.1:$port within ${limit}s; its log:" >&2
  tail -n 50 "$RUN_DIR/$name.log" >&2 || true
  return 1
}

# Starts a command detached from the caller (it outlives the test that started it), logging
# to $RUN_DIR/<name>.log and recording its pid in $RUN_DIR/<name>.pid.
start_bg() {
  local name=$1
  shift
  # fd 9 is the caller's lock (svc_lock): the server must not inherit it, or it holds the
  # lock for as long as it runs and every later start waits forever.
  setsid nohup "$@" >"$RUN_DIR/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN_DIR/$name.pid"
}

# Stops the instance recorded in the pid file (only a process this script started).
stop_bg() {
  local pidfile="$RUN_DIR/$1.pid"
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
}
