#!/usr/bin/env bash
# Benchmark of Switchboard's MCP endpoints. It prints figures and asserts no
# timing; see bench/README.md for what each figure means.
#
#   bench/mcp.sh                  # full run: 20000 requests per scenario
#   SMOKE=1 bench/mcp.sh          # a few seconds: 500 requests per scenario
#
# Environment:
#   REQUESTS=N      requests per scenario (default 20000, or 500 with SMOKE=1)
#   WARMUP=N        unmeasured requests before each scenario (default REQUESTS/10, at most 2000)
#   CONNECTIONS=N   concurrent connections (default 32)
#   THREADS=N       wrk threads (default 2)
#   TASKS=N         tasks assigned to the caller (default 20)
#   MAX_SECONDS=N   safety limit on one wrk run (default 300)
#   SKIP_BUILD=1    use the binaries already in target/release
#   PROFILE=debug   build and run the dev profile instead (the test command's
#                   smoke run reuses its test build; figures mean little then)
#   CARGO_TARGET_DIR, SWITCHBOARD_LOG__LEVEL… are honoured as usual.
#
# Steps: build (release) → run the ceiling (a bare rmcp server, example
# bench_ceiling) alone → fresh SQLite data dir, bootstrap, token, one
# project and TASKS tasks → start switchboard → for each scenario a warm-up,
# then the measured wrk run (bench/mcp.lua checks every answer) → summary.
#
# Exit status: 0 when every request succeeded; 1 when a scenario had errors
# or did not finish (the figures are printed anyway); 2 when setup failed.
# The timing targets never change the exit status.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${PROFILE:-release}
case $PROFILE in
  release) PROFILE_DIR=release; PROFILE_FLAG=(--release) ;;
  debug) PROFILE_DIR=debug; PROFILE_FLAG=() ;;
  *) echo "PROFILE must be release or debug, not '$PROFILE'" >&2; exit 2 ;;
esac
SWITCHBOARD_BIN=$TARGET_DIR/$PROFILE_DIR/switchboard
CEILING_BIN=$TARGET_DIR/$PROFILE_DIR/examples/bench_ceiling

SMOKE=${SMOKE:-0}
if [[ $SMOKE == 1 ]]; then
  REQUESTS=${REQUESTS:-500}
else
  REQUESTS=${REQUESTS:-20000}
fi
WARMUP_DEFAULT=$((REQUESTS / 10))
((WARMUP_DEFAULT > 2000)) && WARMUP_DEFAULT=2000
WARMUP=${WARMUP:-$WARMUP_DEFAULT}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
TASKS=${TASKS:-20}
MAX_SECONDS=${MAX_SECONDS:-300}
# Targets (reported, never enforced).
TARGET_RATIO=60   # whoami requests/s, % of the ceiling's
TARGET_P99_MS=10
TARGET_RSS_MB=100

EMAIL=bench-owner@example.com
ORG=bench
PASSWORD=bench-password-0123456789

START_SECONDS=$SECONDS
WORK=""
PIDS=()      # every process we started and have not stopped yet

say() { printf '%s\n' "$*" >&2; }
die() {
  say "bench/mcp.sh: $*"
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

BUILD_SECONDS=0
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  say "building ($PROFILE)…"
  (cd "$ROOT" && cargo build "${PROFILE_FLAG[@]}" --quiet -p switchboard </dev/null) || die "build failed"
  (cd "$ROOT" && cargo build "${PROFILE_FLAG[@]}" --quiet -p switchboard-protocol --example bench_ceiling </dev/null) ||
    die "build of the ceiling failed"
  BUILD_SECONDS=$((SECONDS - START_SECONDS))
fi
[[ -x $SWITCHBOARD_BIN ]] || die "$SWITCHBOARD_BIN is missing (run without SKIP_BUILD=1)"
[[ -x $CEILING_BIN ]] || die "$CEILING_BIN is missing (run without SKIP_BUILD=1)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench.XXXXXX")

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
  # have reached their count, SIGINT makes it report at once.
  while kill -0 "$pid" 2>/dev/null; do
    if (($(find "$done_dir" -type f | wc -l) >= THREADS)); then
      kill -INT "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.02
  done
  wait "$pid" || true
  forget_pid "$pid"
  grep -q '^BENCH_RESULT ' "$WORK/wrk.out" || {
    say "--- wrk output"; cat "$WORK/wrk.out" >&2
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
  printf_row scenario requests errors "req/s" "p50 ms" "p99 ms" "vs ceil" "peak RSS"
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

# ---------------------------------------------------------------- run

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
SMOKE_NOTE=""
[[ $SMOKE == 1 ]] && SMOKE_NOTE=", SMOKE"
printf 'MCP benchmark: %s requests per scenario (+%s warm-up), %s connections, %s wrk threads, %s CPUs, load average %s%s\n' \
  "$REQUESTS" "$WARMUP" "$CONNECTIONS" "$THREADS" "$(nproc)" "$(loadavg)" "$SMOKE_NOTE"
header

# The ceiling, alone on the machine.
"$CEILING_BIN" 0 </dev/null >"$WORK/ceiling.out" 2>&1 &
CEILING_PID=$!
PIDS+=("$CEILING_PID")
CEILING_URL=$(wait_listening "$CEILING_PID" "$WORK/ceiling.out" "listening on ")
scenario "ceiling constant /mcp 2026" "$CEILING_URL/mcp" stateless constant "" "" "$CEILING_PID"
CEILING_RSS_KB=$(peak_rss_kb "$CEILING_PID")
stop_pid "$CEILING_PID"
forget_pid "$CEILING_PID"

# Switchboard on a fresh SQLite data directory.
DATA=$WORK/data
mkdir "$DATA"
SWITCHBOARD_BOOTSTRAP_PASSWORD=$PASSWORD "$SWITCHBOARD_BIN" admin bootstrap --data-dir "$DATA" \
  --email "$EMAIL" --org-slug "$ORG" --org-name "Bench" </dev/null >"$WORK/bootstrap.json" 2>"$WORK/bootstrap.err" ||
  { cat "$WORK/bootstrap.err" >&2; die "bootstrap failed"; }
"$SWITCHBOARD_BIN" token create --data-dir "$DATA" --email "$EMAIL" --org "$ORG" --name bench \
  --scopes read:org,read:tasks,write:tasks,write:commits,read:requirements --json \
  </dev/null >"$WORK/token.json" 2>"$WORK/token.err" ||
  { cat "$WORK/token.err" >&2; die "token create failed"; }
TOKEN=$(json_field token <"$WORK/token.json")
[[ -n $TOKEN ]] || die "no token in the output of token create"

"$SWITCHBOARD_BIN" serve --data-dir "$DATA" --listen 127.0.0.1:0 </dev/null \
  >"$WORK/switchboard.out" 2>"$WORK/switchboard.log" &
SB_PID=$!
PIDS+=("$SB_PID")
SB_URL=$(wait_listening "$SB_PID" "$WORK/switchboard.out" "switchboard listening on ")

api() { # api METHOD PATH [BODY]
  local args=(-sS --fail-with-body -X "$1" "$SB_URL/api/v1$2" -H "Authorization: Bearer $TOKEN")
  if (($# > 2)); then
    args+=(-H 'Content-Type: application/json' --data "$3")
  fi
  curl "${args[@]}" </dev/null
}
MEMBERSHIP=$(api GET /me | json_field membership_id) || die "GET /api/v1/me failed"
[[ -n $MEMBERSHIP ]] || die "no membership_id in GET /api/v1/me"
PROJECT=$(api POST /projects '{"name":"Benchmark"}' | json_field id) || die "could not create the project"
for ((i = 1; i <= TASKS; i++)); do
  api POST /tasks "{\"project_id\":\"$PROJECT\",\"title\":\"Benchmark task $i\",\"assignee_ids\":[\"$MEMBERSHIP\"]}" \
    >/dev/null || die "could not create task $i"
done

# Stateless 2026-07-28.
for tool in whoami listMyTasks; do
  scenario "$tool /mcp 2026 stateless" "$SB_URL/mcp" stateless "$tool" "$TOKEN" "" "$SB_PID"
done

# One legacy 2025-11-25 session, shared by every request.
MCP_HEADERS=(-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json'
  -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2025-11-25')
curl -sS --fail-with-body -o "$WORK/init.sse" -D "$WORK/init.headers" "${MCP_HEADERS[@]}" "$SB_URL/mcp" \
  --data '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' \
  </dev/null || die "initialize failed"
SESSION=$(sed -n 's/^[Mm][Cc][Pp]-[Ss][Ee][Ss][Ss][Ii][Oo][Nn]-[Ii][Dd]: *\([^[:space:]]*\).*/\1/p' "$WORK/init.headers")
[[ -n $SESSION ]] || die "initialize returned no Mcp-Session-Id"
curl -sS --fail-with-body -o /dev/null "${MCP_HEADERS[@]}" -H "Mcp-Session-Id: $SESSION" "$SB_URL/mcp" \
  --data '{"jsonrpc":"2.0","method":"notifications/initialized"}' </dev/null ||
  die "notifications/initialized failed"
for tool in whoami listMyTasks; do
  scenario "$tool /mcp 2025 session" "$SB_URL/mcp" legacy "$tool" "$TOKEN" "$SESSION" "$SB_PID"
done

# Plain JSON-RPC.
for tool in whoami listMyTasks; do
  scenario "$tool /mcp/rpc" "$SB_URL/mcp/rpc" rpc "$tool" "$TOKEN" "" "$SB_PID"
done

SB_RSS_KB=$(peak_rss_kb "$SB_PID")
stop_pid "$SB_PID"
forget_pid "$SB_PID"

# ---------------------------------------------------------------- summary

echo
echo "Summary ($REQUESTS requests per scenario, $CONNECTIONS connections; took $((SECONDS - START_SECONDS - BUILD_SECONDS)) s + $BUILD_SECONDS s build; load average now $(loadavg))"
header
for i in "${!NAMES[@]}"; do
  printf_row "${NAMES[$i]}" "${COUNTS[$i]}" "${ERRORS[$i]}" "${RPS[$i]}" "${P50[$i]}" "${P99[$i]}" \
    "${RATIOS[$i]}" "${RSS[$i]}"
done
echo
printf 'peak RSS (VmHWM): switchboard %s MB, ceiling %s MB\n' "$(mb "$SB_RSS_KB")" "$(mb "$CEILING_RSS_KB")"
echo "targets (reported, not enforced):"
for i in "${!NAMES[@]}"; do
  [[ ${NAMES[$i]} == whoami* ]] || continue
  awk -v name="${NAMES[$i]}" -v ratio="${RATIOS[$i]%\%}" -v p99="${P99[$i]}" \
    -v tr="$TARGET_RATIO" -v tp="$TARGET_P99_MS" 'BEGIN {
      printf "  %-32s req/s %5.1f%% of ceiling (>= %d%%: %s)   p99 %.2f ms (< %d ms: %s)\n",
        name, ratio, tr, (ratio >= tr ? "met" : "NOT met"), p99, tp, (p99 < tp ? "met" : "NOT met")
    }'
done
awk -v k="$SB_RSS_KB" -v t="$TARGET_RSS_MB" 'BEGIN {
  printf "  %-32s %.1f MB (< %d MB: %s)\n", "switchboard peak RSS", k / 1024, t, (k / 1024 < t ? "met" : "NOT met")
}'
if ((FAILED)); then
  echo "some requests failed or a scenario did not finish (marked * or !): see above"
  exit 1
fi
