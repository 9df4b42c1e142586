#!/usr/bin/env bash
# Benchmark of the gateway: the test upstream's `echo` tool called directly,
# through a virtual server over Streamable HTTP, and through one over stdio,
# in one run, side by side. It prints figures and asserts no timing.
#
#   bench/gateway.sh              # full run: 3 rounds of 20000 requests per scenario
#   SMOKE=1 bench/gateway.sh      # 1 round of 500 requests per scenario
#
# Environment: REQUESTS, WARMUP, CONNECTIONS (default 32), THREADS (2),
# MAX_SECONDS, SKIP_BUILD, PROFILE=debug, as for bench/mcp.sh; ROUNDS (3, or
# 1 with SMOKE): the three scenarios run this many times, interleaved, and
# the summary shows each scenario's round with the median ratio to direct
# (on two shared cores one run's figures move by ±20%).
#
# Steps: build (release) switchboard and switchboard-test-upstream → start
# the upstream over HTTP → bootstrap a fresh SQLite hub (audit on, as
# always), a token with connections:use, two connections to the upstream
# (HTTP, and stdio: the hub runs its own child) granted to the org → for
# each scenario a warm-up then the measured run at CONNECTIONS, then the
# same three at concurrency 1 (one connection, one thread) for the added
# latency → summary with the ratios to direct and the peak RSS.
#
# Exit status: 0 when every request succeeded; 1 when a scenario had errors
# or did not finish; 2 when setup failed.
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
UPSTREAM_BIN=$TARGET_DIR/$PROFILE_DIR/switchboard-test-upstream

SMOKE=${SMOKE:-0}
if [[ $SMOKE == 1 ]]; then
  REQUESTS=${REQUESTS:-500}
  ROUNDS=${ROUNDS:-1}
else
  REQUESTS=${REQUESTS:-20000}
  ROUNDS=${ROUNDS:-3}
fi
WARMUP_DEFAULT=$((REQUESTS / 10))
((WARMUP_DEFAULT > 2000)) && WARMUP_DEFAULT=2000
WARMUP=${WARMUP:-$WARMUP_DEFAULT}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
MAX_SECONDS=${MAX_SECONDS:-300}
# Targets (reported, never enforced).
TARGET_RATIO=25    # gateway over HTTP, % of direct requests/s at CONNECTIONS
TARGET_ADDED_P50_MS=0.5

EMAIL=bench-owner@example.com
ORG=bench
PASSWORD=bench-password-0123456789
RATIO_LABEL="vs direct"
export BENCH_ARGS='{"text":"hello from the benchmark"}'

START_SECONDS=$SECONDS
WORK=""

# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

BUILD_SECONDS=0
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  say "building ($PROFILE)…"
  (cd "$ROOT" && cargo build "${PROFILE_FLAG[@]}" --quiet -p switchboard -p switchboard-test-upstream </dev/null) ||
    die "build failed"
  BUILD_SECONDS=$((SECONDS - START_SECONDS))
fi
[[ -x $SWITCHBOARD_BIN ]] || die "$SWITCHBOARD_BIN is missing (run without SKIP_BUILD=1)"
[[ -x $UPSTREAM_BIN ]] || die "$UPSTREAM_BIN is missing (run without SKIP_BUILD=1)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-gateway-bench.XXXXXX")

# ---------------------------------------------------------------- set-up

"$UPSTREAM_BIN" http --listen 127.0.0.1:0 </dev/null >"$WORK/upstream.out" 2>"$WORK/upstream.err" &
UP_PID=$!
PIDS+=("$UP_PID")
UP_URL=$(wait_listening "$UP_PID" "$WORK/upstream.out" "listening on ")

DATA=$WORK/data
mkdir "$DATA"
SWITCHBOARD_BOOTSTRAP_PASSWORD=$PASSWORD "$SWITCHBOARD_BIN" admin bootstrap --data-dir "$DATA" \
  --email "$EMAIL" --org-slug "$ORG" --org-name "Bench" </dev/null >"$WORK/bootstrap.json" 2>"$WORK/bootstrap.err" ||
  { cat "$WORK/bootstrap.err" >&2; die "bootstrap failed"; }
"$SWITCHBOARD_BIN" token create --data-dir "$DATA" --email "$EMAIL" --org "$ORG" --name bench \
  --scopes read:org,write:org,connections:use --json </dev/null >"$WORK/token.json" 2>"$WORK/token.err" ||
  { cat "$WORK/token.err" >&2; die "token create failed"; }
TOKEN=$(json_field token <"$WORK/token.json")
[[ -n $TOKEN ]] || die "no token in the output of token create"

# The test upstream as an operator catalog entry (its exact command line),
# started as nobody when this runs as root (stdio children never run as root).
cat >"$WORK/operator-catalog.json" <<CATALOG
[{"id": "fixture", "name": "Test upstream", "description": "The benchmark's stdio upstream",
  "transport": "stdio", "command": "$UPSTREAM_BIN", "args": ["stdio"],
  "config": {"type": "object", "additionalProperties": false, "properties": {}}}]
CATALOG
STDIO_USER=
if [[ $(id -u) == 0 ]]; then STDIO_USER=nobody; fi
SWITCHBOARD_GATEWAY__ALLOW_LOOPBACK_UPSTREAMS=true \
SWITCHBOARD_GATEWAY__OPERATOR_CATALOG=$WORK/operator-catalog.json \
SWITCHBOARD_GATEWAY__STDIO_USER=$STDIO_USER \
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
api POST /connections "{\"slug\":\"up-http\",\"name\":\"Upstream (HTTP)\",\"transport\":\"streamable_http\",\"url\":\"$UP_URL\",\"tool_overrides\":{\"echo\":{\"read_only\":true}}}" \
  >/dev/null || die "could not create the HTTP connection"
api POST /connections "{\"slug\":\"up-stdio\",\"name\":\"Upstream (stdio)\",\"transport\":\"stdio\",\"command\":\"$UPSTREAM_BIN\",\"args\":[\"stdio\"],\"tool_overrides\":{\"echo\":{\"read_only\":true}}}" \
  >/dev/null || die "could not create the stdio connection"
for c in up-http up-stdio; do
  api POST "/connections/$c/grants" '{"kind":"org"}' >/dev/null || die "could not grant $c"
  api POST "/connections/$c/refresh" '{}' >"$WORK/refresh-$c.json" || die "could not refresh $c"
  grep -q '"health":"connected"' "$WORK/refresh-$c.json" || { cat "$WORK/refresh-$c.json" >&2; die "$c is not connected"; }
done

# ---------------------------------------------------------------- run

SMOKE_NOTE=""
[[ $SMOKE == 1 ]] && SMOKE_NOTE=", SMOKE"
printf 'Gateway benchmark: echo, %s requests per scenario (+%s warm-up), %s connections, %s wrk threads, %s CPUs, load average %s%s\n' \
  "$REQUESTS" "$WARMUP" "$CONNECTIONS" "$THREADS" "$(nproc)" "$(loadavg)" "$SMOKE_NOTE"
header
run_three() { # LABEL: one round, its ratios against its own direct run
  CEILING_RPS=""
  scenario "direct $1" "$UP_URL" stateless echo "" "" "$UP_PID"
  scenario "gateway HTTP $1" "$SB_URL/mcp/servers/up-http" stateless echo "$TOKEN" "" "$SB_PID"
  scenario "gateway stdio $1" "$SB_URL/mcp/servers/up-stdio" stateless echo "$TOKEN" "" "$SB_PID"
}
round_label() { # LABEL ROUND
  if ((ROUNDS > 1)); then echo "$1 #$2"; else echo "$1"; fi
}
for ((round = 1; round <= ROUNDS; round++)); do
  run_three "$(round_label "c=$CONNECTIONS" "$round")"
done
# Concurrency 1: the added latency per call.
SAVED=("$CONNECTIONS" "$THREADS" "$REQUESTS" "$WARMUP")
CONNECTIONS=1 THREADS=1
REQUESTS=$((REQUESTS / 4 > 200 ? REQUESTS / 4 : 200)) WARMUP=$((WARMUP / 4))
PER_THREAD=$REQUESTS WARMUP_PER_THREAD=$WARMUP
for ((round = 1; round <= ROUNDS; round++)); do
  run_three "$(round_label "c=1" "$round")"
done
CONNECTIONS=${SAVED[0]} THREADS=${SAVED[1]} REQUESTS=${SAVED[2]} WARMUP=${SAVED[3]}

# median_round FIRST: of the rounds' rows FIRST, FIRST+3, …, the index of
# the one with the median ratio (rows of a round are direct, HTTP, stdio).
median_round() {
  local first=$1 i
  for ((i = first; i < first + 3 * ROUNDS; i += 3)); do
    printf '%s %s\n' "${RATIOS[$i]%\%}" "$i"
  done | sort -n | awk -v m=$(((ROUNDS + 1) / 2)) 'NR == m { print $2 }'
}
C1=$((3 * ROUNDS))
SUMMARY=(
  "$(median_round 0)" "$(median_round 1)" "$(median_round 2)"
  "$(median_round "$C1")" "$(median_round $((C1 + 1)))" "$(median_round $((C1 + 2)))"
)
# The direct rows are 100% in every round: take the round of the HTTP
# median for them, so each summary block is one round's figures.
SUMMARY[0]=$((SUMMARY[1] - 1)) SUMMARY[3]=$((SUMMARY[4] - 1))
I_HTTP=${SUMMARY[1]} I_STDIO=${SUMMARY[2]}

SB_RSS_KB=$(peak_rss_kb "$SB_PID")
UP_RSS_KB=$(peak_rss_kb "$UP_PID")
CHILD_PID=$(pgrep -P "$SB_PID" -f "switchboard-test-upstream stdio" | head -n1 || true)
CHILD_RSS_KB=$([[ -n $CHILD_PID ]] && peak_rss_kb "$CHILD_PID" || echo 0)
stop_pid "$SB_PID"
forget_pid "$SB_PID"

# ---------------------------------------------------------------- summary

echo
echo "Summary ($REQUESTS requests per scenario at c=$CONNECTIONS, the median of $ROUNDS round(s) by ratio to direct; took $((SECONDS - START_SECONDS - BUILD_SECONDS)) s + $BUILD_SECONDS s build; load average now $(loadavg))"
header
for i in "${SUMMARY[@]}"; do
  printf_row "${NAMES[$i]}" "${COUNTS[$i]}" "${ERRORS[$i]}" "${RPS[$i]}" "${P50[$i]}" "${P99[$i]}" \
    "${RATIOS[$i]}" "${RSS[$i]}"
done
echo
printf 'peak RSS (VmHWM): switchboard %s MB, upstream (HTTP) %s MB, upstream child (stdio) %s MB\n' \
  "$(mb "$SB_RSS_KB")" "$(mb "$UP_RSS_KB")" "$(mb "$CHILD_RSS_KB")"
if [[ ${SMOKE:-0} == 1 ]]; then
  # A smoke run (debug build, a few hundred requests) checks that every
  # request succeeds under load; its figures say nothing about the targets.
  echo "targets: not judged in smoke mode (run without SMOKE=1 on a release build)"
else
  echo "targets (reported, not enforced):"
  awk -v ratio="${RATIOS[$I_HTTP]%\%}" -v t="$TARGET_RATIO" 'BEGIN {
    printf "  gateway HTTP at c='"$CONNECTIONS"': %5.1f%% of direct (>= %d%%: %s)\n", ratio, t, (ratio >= t ? "met" : "NOT met") }'
  awk -v s="${RATIOS[$I_STDIO]%\%}" 'BEGIN { printf "  gateway stdio at c='"$CONNECTIONS"': %5.1f%% of direct\n", s }'
  # Each gateway row against the direct row of its own round.
  awk -v d="${P50[$((SUMMARY[4] - 1))]}" -v h="${P50[${SUMMARY[4]}]}" \
    -v ds="${P50[$((SUMMARY[5] - 2))]}" -v s="${P50[${SUMMARY[5]}]}" -v t="$TARGET_ADDED_P50_MS" 'BEGIN {
    printf "  added p50 at c=1: HTTP %.2f ms (< %.1f ms: %s), stdio %.2f ms\n", h - d, t, (h - d < t ? "met" : "NOT met"), s - ds }'
fi
if ((FAILED)); then
  echo "some requests failed or a scenario did not finish (marked * or !): see above"
  exit 1
fi
