#!/usr/bin/env bash
# Shared by the benchmarks (bench/mcp.sh, bench/gateway.sh): process
# bookkeeping, the wrk driver (bench/mcp.lua checks every answer) and the
# result table. Sourced, never run. The caller sets ROOT, BENCH, REQUESTS,
# WARMUP, CONNECTIONS, THREADS and MAX_SECONDS first; WORK is set by the
# caller after sourcing (mktemp) and removed by the EXIT trap.
# The first scenario of a run is the baseline of the ratio column.

PIDS=()      # every process we started and have not stopped yet

say() { printf '%s\n' "$*" >&2; }
die() {
  say "$(basename "$0"): $*"
  exit 2
}

# Stops one process we started: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

forget_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do
    [[ $p == "$1" ]] || keep+=("$p")
  done
  PIDS=("${keep[@]}")
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${PIDS[@]}"; do
    stop_pid "$pid"
  done
  if [[ -n $WORK && -d $WORK ]]; then
    rm -rf -- "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

# ---------------------------------------------------------------- tools

need_wrk() {
  command -v wrk >/dev/null && return 0
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing wrk (apt-get)…"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk </dev/null >/dev/null ||
      { DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >/dev/null &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk </dev/null >/dev/null; } ||
      die "could not install wrk"
  fi
  command -v wrk >/dev/null || die "wrk is missing: apt-get install wrk"
}
need_wrk
command -v curl >/dev/null || die "curl is missing: apt-get install curl"

# ---------------------------------------------------------------- helpers

# First "key":"value" string of a JSON document on stdin.
json_field() {
  grep -o "\"$1\": *\"[^\"]*\"" | sed -n '1s/.*: *"\(.*\)"$/\1/p'
}

# Waits for `PATTERN<url>` on a process's stdout file; prints the URL.
wait_listening() {
  local pid=$1 out=$2 pattern=$3 i url
  for ((i = 0; i < 600; i++)); do
    url=$(sed -n "s|.*${pattern}\(http://[^ ]*\).*|\1|p" "$out" 2>/dev/null | head -n1 || true)
    if [[ -n $url ]]; then
      printf '%s\n' "$url"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  say "--- $out"; tail -n 20 "$out" >&2 || true
  die "the server did not start (pid $pid)"
}

# Peak resident set size (VmHWM) of a process, in kB.
peak_rss_kb() {
  sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$1/status" 2>/dev/null || echo 0
}

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# ---------------------------------------------------------------- load

PER_THREAD=$(((REQUESTS + THREADS - 1) / THREADS))
WARMUP_PER_THREAD=$(((WARMUP + THREADS - 1) / THREADS))

# run_wrk PER_THREAD URL MODE TOOL TOKEN SESSION → leaves the BENCH_ lines in $WORK/wrk.out
run_wrk() {
  local per_thread=$1 url=$2 mode=$3 tool=$4 token=$5 session=$6
  local done_dir=$WORK/done pid
  rm -rf "$done_dir" && mkdir "$done_dir"
  BENCH_MODE=$mode BENCH_TOOL=$tool BENCH_TOKEN=$token BENCH_SESSION=$session \
    BENCH_PER_THREAD=$per_thread BENCH_DONE_DIR=$done_dir \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${MAX_SECONDS}s" --timeout 10s \
    -s "$BENCH/mcp.lua" "$url" </dev/null >"$WORK/wrk.out" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  # wrk sleeps for the whole -d even when every thread has stopped; once all
  # have reached their count, SIGINT makes it report at once. wrk installs
  # its SIGINT handler only after starting its threads, so a signal in that
  # window would kill it silently: never signal in the first half second.
  # The loop forks nothing (no find, wc, awk or sleep): at 50 polls a
  # second those processes took about a tenth of the two cores the
  # measured servers share. `read -t` on a FIFO nobody writes to sleeps.
  local started=${EPOCHREALTIME//[.,]/} now tick=$WORK/tick.fifo tick_fd files
  [[ -p $tick ]] || mkfifo "$tick"
  exec {tick_fd}<>"$tick"
  while kill -0 "$pid" 2>/dev/null; do
    files=("$done_dir"/*)
    now=${EPOCHREALTIME//[.,]/}
    if [[ -e ${files[0]} ]] && ((${#files[@]} >= THREADS && now - started >= 500000)); then
      kill -INT "$pid" 2>/dev/null || true
      break
    fi
    read -r -t 0.05 -u "$tick_fd" _ || true
  done
  exec {tick_fd}>&-
  local status=0
  wait "$pid" || status=$?
  forget_pid "$pid"
  grep -q '^BENCH_RESULT ' "$WORK/wrk.out" || {
    say "--- wrk output (exit status $status)"; cat "$WORK/wrk.out" >&2
    die "wrk produced no result"
  }
}

# Results, one entry per scenario.
NAMES=() COUNTS=() ERRORS=() RPS=() P50=() P99=() RATIOS=() RSS=()
CEILING_RPS=""
FAILED=0

printf_row() {
  printf '%-32s %9s %7s %9s %8s %8s %8s %9s\n' "$@"
}

header() {
  printf_row scenario requests errors "req/s" "p50 ms" "p99 ms" "${RATIO_LABEL:-vs ceil}" "peak RSS"
}

# scenario NAME URL MODE TOOL TOKEN SESSION RSS_PID
scenario() {
  local name=$1 url=$2 mode=$3 tool=$4 token=$5 session=$6 rss_pid=$7
  if ((WARMUP > 0)); then
    run_wrk "$WARMUP_PER_THREAD" "$url" "$mode" "$tool" "$token" "$session"
  fi
  run_wrk "$PER_THREAD" "$url" "$mode" "$tool" "$token" "$session"
  local line kv
  line=$(grep -m1 '^BENCH_RESULT ' "$WORK/wrk.out")
  declare -A r=()
  for kv in ${line#BENCH_RESULT }; do
    r[${kv%%=*}]=${kv#*=}
  done
  local errors=$((r[non2xx] + r[rpc_errors] + r[tool_errors] + r[socket_errors]))
  local rps p50 p99 ratio rss
  rps=$(awk -v n="${r[answered]}" -v us="${r[duration_us]}" 'BEGIN { printf "%.0f", (us > 0 ? n / (us / 1e6) : 0) }')
  p50=$(awk -v us="${r[p50_us]}" 'BEGIN { printf "%.2f", us / 1000 }')
  p99=$(awk -v us="${r[p99_us]}" 'BEGIN { printf "%.2f", us / 1000 }')
  [[ -z $CEILING_RPS ]] && CEILING_RPS=$rps
  ratio=$(awk -v a="$rps" -v c="$CEILING_RPS" 'BEGIN { printf "%.1f%%", (c > 0 ? 100 * a / c : 0) }')
  rss="$(mb "$(peak_rss_kb "$rss_pid")") MB"
  local count=${r[answered]}
  if [[ ${r[finished]} != true ]]; then
    count="${count}*"
    FAILED=1
  fi
  ((errors > 0)) && FAILED=1
  NAMES+=("$name") COUNTS+=("$count") ERRORS+=("$errors") RPS+=("$rps")
  P50+=("$p50") P99+=("$p99") RATIOS+=("$ratio") RSS+=("$rss")
  printf_row "$name" "$count" "$errors" "$rps" "$p50" "$p99" "$ratio" "$rss"
  if ((errors > 0)) || [[ ${r[finished]} != true ]]; then
    printf '    ! non2xx=%s rpc_errors=%s tool_errors=%s socket_errors=%s (timeouts %s) statuses=%s finished=%s\n' \
      "${r[non2xx]}" "${r[rpc_errors]}" "${r[tool_errors]}" "${r[socket_errors]}" "${r[timeouts]}" \
      "${r[statuses]}" "${r[finished]}"
    sed -n 's/^BENCH_FIRST_ERROR /    ! first error: /p' "$WORK/wrk.out" | cut -c1-400
  fi
}


loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
