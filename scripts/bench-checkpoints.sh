#!/usr/bin/env bash
# make bench (part): what checkpoints cost. The movie-impressions job on the same input three
# ways in the same run: no checkpoints, a checkpoint every 10 s, a checkpoint every 1 s
# (the 10-million-event job takes only a few seconds, so 10 s means the final checkpoint
# only; 1 s shows the per-checkpoint cost). Reports events/s, the cost against no
# checkpoints, how many checkpoints were taken, the engine's pause per checkpoint and the
# checkpoint size, and the share of the run the engine spent paused for checkpoints (a cost
# measure that other load on the machine does not blur). Results go to $DIR/checkpoints.md.
#
# usage: scripts/bench-checkpoints.sh [EVENTS] [DIR]
set -euo pipefail
EVENTS=${1:-10000000}
DIR=${2:-out/bench}
BIN=${STREAMCTL:-target/release/streamctl}
RUNS=${RUNS:-3}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
INPUT="$DIR/impressions-$EVENTS.jsonl"
if [ ! -s "$INPUT" ]; then
  echo "generating $EVENTS movie impressions…"
  "$BIN" generate movie-impressions --count "$EVENTS" --disorder 4s -o "$INPUT.tmp"
  mv "$INPUT.tmp" "$INPUT"
fi

# Runs the job; prints "wall_seconds checkpoints avg_pause_ms max_pause_ms last_bytes".
run_job() {
  local name=$1 interval=$2
  local out="$DIR/ckbench-out-$name" cp="$DIR/ckbench-cp-$name"
  rm -rf "$out" "$cp"
  local args=()
  if [ "$interval" != none ]; then
    args=(--checkpoint-dir "$cp" --checkpoint-interval "$interval")
  fi
  local start end log
  # Write back what earlier runs left dirty in the page cache first, so this run does not pay
  # for the previous one's output (a run without checkpoints never fsyncs; its 42 MB or more
  # would otherwise be written back during the next run, which is always a checkpointed one).
  sync
  start=$(date +%s.%N)
  log=$(INPUT="$INPUT" OUTPUT="file://$out/" "$BIN" run pipelines/movie-impressions-local.yaml --progress off "${args[@]}" 2>&1)
  end=$(date +%s.%N)
  local n=0 avg=0 max=0 size=0
  if [ "$interval" != none ]; then
    # "  N checkpoints taken (the last X); the engine paused A ms each on average, M ms at most"
    n=$(sed -n 's/^  \([0-9]*\) checkpoints\{0,1\} taken.*/\1/p' <<<"$log")
    avg=$(sed -n 's/.*paused \([0-9]*\) ms each.*/\1/p' <<<"$log")
    max=$(sed -n 's/.*, \([0-9]*\) ms at most.*/\1/p' <<<"$log")
    # The largest checkpoint kept (the final one of a completed run is small).
    size=$(find "$cp" -name 'chk-*.ckpt' -printf '%s\n' | sort -n | tail -1)
  fi
  rm -rf "$out" "$cp"
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.2f", b-a}') ${n:-0} ${avg:-0} ${max:-0} ${size:-0}"
}

rows=()
for i in $(seq 1 "$RUNS"); do
  for mode in none 10s 1s; do
    read -r wall n avg max size < <(run_job "$mode" "$mode")
    rows+=("$i $mode $wall $n $avg $max $size")
    echo "run $i, checkpoints $mode: ${wall}s, $n checkpoints, pause avg ${avg} ms max ${max} ms, size ${size} B"
  done
done

{
  echo "| run | checkpoints | wall (s) | events/s | cost vs none | checkpoints taken | pause avg (ms) | pause max (ms) | engine paused | largest checkpoint |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for r in "${rows[@]}"; do
    read -r i mode wall n avg max size <<<"$r"
    base=$(for b in "${rows[@]}"; do read -r bi bm bw _ <<<"$b"; [ "$bi" = "$i" ] && [ "$bm" = none ] && echo "$bw"; done; true)
    awk -v i="$i" -v m="$mode" -v w="$wall" -v b="$base" -v e="$EVENTS" -v n="$n" -v a="$avg" -v x="$max" -v s="$size" \
      'BEGIN { cost = (m == "none") ? "—" : sprintf("%+.1f%%", (w / b - 1) * 100);
               sz = (m == "none") ? "—" : sprintf("%.2f MiB", s / 1048576);
               paused = (m == "none") ? "—" : sprintf("%.1f%%", n * a / (w * 10));
               printf "| %d | %s | %.2f | %.2fM | %s | %s | %s | %s | %s | %s |\n", i, m, w, e / w / 1e6, cost, (m=="none")?"—":n, (m=="none")?"—":a, (m=="none")?"—":x, paused, sz }'
  done
  echo
  echo "input: $EVENTS events; $(nproc) cores; $(date -u +%Y-%m-%d)"
} | tee "$DIR/checkpoints.md"
