#!/usr/bin/env bash
# Echo ping-pong, epoll vs iouring, in one run: msgs/s (median of RUNS) at 1 and
# 1000 connections with 64-byte messages, then syscalls per message measured with
# perf (raw_syscalls:sys_enter over every thread of the server process).
# Server pinned to CPU 0, the C client to CPU 1.
#   bash packages/backend-iouring/bench/run.sh [seconds=5] [runs=3]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
secs="${1:-5}"
runs="${2:-3}"
client=/tmp/logcaster-echo-client
gcc -O2 -Wall -Wextra -o "$client" "$here/echo-client.c"

start_server() {  # backend port -> sets SPID
  local fifo
  fifo=$(mktemp -u)
  mkfifo "$fifo"
  taskset -c 0 node "$here/echo-server.js" "$1" "$2" >"$fifo" &
  SPID=$!
  read -r line <"$fifo"
  rm -f "$fifo"
}
stop_server() { kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

port=19400
declare -A rates
printf '%-8s %6s %12s %24s %14s\n' backend conns 'msgs/s(med)' 'runs' 'syscalls/msg'
for conns in 1 1000; do
  # Interleave the backends run by run so both see the same machine conditions.
  for ((r = 0; r < runs; r++)); do
    for be in epoll iouring; do
      port=$((port + 1))
      start_server "$be" "$port"
      rates[$be]+="$(taskset -c 1 "$client" "$port" "$conns" "$secs" 64 1) "
      stop_server
    done
  done
  for be in epoll iouring; do
    med=$(printf '%s\n' ${rates[$be]} | median)
    # Syscalls per message: perf counts every syscall of the server process (all
    # threads) during a window in which the client measures its own rate.
    port=$((port + 1))
    start_server "$be" "$port"
    taskset -c 1 "$client" "$port" "$conns" "$secs" 64 0.5 >/tmp/lc-bench-rate &
    cpid=$!
    sleep 0.5
    sc=$(perf stat -x, -e raw_syscalls:sys_enter -p "$SPID" -- sleep "$secs" 2>&1 | awk -F, '/raw_syscalls/ {print $1}')
    wait "$cpid"
    rate=$(cat /tmp/lc-bench-rate)
    stop_server
    per=$(awk -v s="$sc" -v r="$rate" -v t="$secs" 'BEGIN { printf "%.3f", s / (r * t) }')
    printf '%-8s %6d %12s %24s %14s\n' "$be" "$conns" "$med" "$(echo ${rates[$be]} | tr ' ' /)" "$per"
    rates[$be]=""
  done
done
