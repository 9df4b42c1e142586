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

# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"


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

# ---------------------------------------------------------------- run

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
if [[ ${SMOKE:-0} == 1 ]]; then
  # A smoke run (debug build, a few hundred requests) checks that every
  # request succeeds under load; its figures say nothing about the targets.
  echo "targets: not judged in smoke mode (run without SMOKE=1 on a release build)"
else
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
fi
if ((FAILED)); then
  echo "some requests failed or a scenario did not finish (marked * or !): see above"
  exit 1
fi
