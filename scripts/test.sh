#!/usr/bin/env bash
# Switchboard: THE test command. Runs everything CI runs:
#
#   ./scripts/test.sh [EXTRA_ARGS...]
#
# Stages:
#   1. cargo fmt --all -- --check
#   2. cargo clippy --workspace --all-targets -- -D warnings
#   3. start a throwaway PostgreSQL cluster (scripts/pg-cluster.sh) and export
#      SWITCHBOARD_TEST_POSTGRES_URL; it is stopped and deleted on exit
#   3b. install (or reuse) the real MCP clients and the conformance suite
#      (scripts/mcp-tools.sh) and export SWITCHBOARD_MCP_TOOLS; Debian's
#      chromium for the OAuth browser tests (installed as root when missing;
#      an error under CI=true, a warning otherwise) and SWITCHBOARD_CHROMIUM
#   5. the benchmarks in smoke mode (SMOKE=1 PROFILE=debug bench/mcp.sh, then
#      bench/gateway.sh)
#   4. build, then run every test: `cargo nextest run --workspace --no-fail-fast`,
#      or `cargo test --workspace --no-fail-fast` when cargo-nextest is not
#      installed. (There are no doctests; nextest would not run them.)
#
# The last line is "tests: N passed, N failed", from the runner's summary.
#
# EXTRA_ARGS are passed to the test runner (nextest or cargo test), e.g.
#   ./scripts/test.sh -p switchboard-storage
#   ./scripts/test.sh -E 'test(oauth)'          # nextest filter expression
#
# Environment:
#   SKIP_LINT=1   skip stages 1-2 (fmt, clippy) for quick local iteration.
#                 CI never sets this.
#
# Exit status: the test runner's exit status (or that of the first failing
# stage when an earlier stage fails). A per-stage timing summary is printed at
# the end in all cases.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

export RUST_BACKTRACE=1

# ---------------------------------------------------------------------------
# Stage bookkeeping
# ---------------------------------------------------------------------------
STAGE_NAMES=()
STAGE_SECS=()
STAGE_RESULTS=()
CURRENT_STAGE=""
STAGE_T0=0
SCRIPT_T0=$SECONDS

PG_TMP=""
PG_DIR=""
# The output of the stage running now, when it is kept (the benchmarks): on
# failure its last lines are printed again after the summary, because CI
# shows only the end of the output.
STAGE_LOG=""

begin_stage() {
    CURRENT_STAGE=$1
    STAGE_T0=$SECONDS
    printf '\n==============================================================\n'
    printf '== %s\n' "$CURRENT_STAGE"
    printf '==============================================================\n'
}

end_stage() {
    local result=$1 secs=$(( SECONDS - STAGE_T0 ))
    STAGE_NAMES+=("$CURRENT_STAGE")
    STAGE_SECS+=("$secs")
    STAGE_RESULTS+=("$result")
    printf '== %s: %s (%ss)\n' "$CURRENT_STAGE" "$result" "$secs"
    CURRENT_STAGE=""
}

skip_stage() {
    STAGE_NAMES+=("$1")
    STAGE_SECS+=("0")
    STAGE_RESULTS+=("skipped ($2)")
}

print_summary() {
    local i
    printf '\n==============================================================\n'
    printf '== Summary\n'
    printf '==============================================================\n'
    for i in "${!STAGE_NAMES[@]}"; do
        printf '  %-42s %6ss  %s\n' "${STAGE_NAMES[$i]}" "${STAGE_SECS[$i]}" "${STAGE_RESULTS[$i]}"
    done
    printf '  %-42s %6ss\n' "total" "$(( SECONDS - SCRIPT_T0 ))"
}

# The closing line CI reads: "N passed, N failed" from the runner's own summary.
print_counts() {
    [ -n "${TEST_LOG:-}" ] && [ -f "$TEST_LOG" ] || return 0
    local passed failed
    if [ "${RUNNER:-}" = nextest ]; then
        passed=$(sed -n 's/.* tests run: \([0-9]*\) passed.*/\1/p' "$TEST_LOG" | tail -n 1)
        failed=$(sed -n 's/.* tests run: .* \([0-9]*\) failed.*/\1/p' "$TEST_LOG" | tail -n 1)
    else
        passed=$(sed -n 's/^test result: .*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$TEST_LOG" | awk '{s+=$1} END {print s+0}')
        failed=$(sed -n 's/^test result: .*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$TEST_LOG" | awk '{s+=$1} END {print s+0}')
    fi
    rm -f -- "$TEST_LOG"
    printf '\ntests: %s passed, %s failed\n' "${passed:-0}" "${failed:-0}"
}

stop_cluster() {
    if [ -n "$PG_DIR" ]; then
        local t0=$SECONDS
        printf '\n== Stopping PostgreSQL test cluster\n'
        if ./scripts/pg-cluster.sh stop "$PG_DIR"; then
            STAGE_NAMES+=("stop PostgreSQL"); STAGE_SECS+=("$(( SECONDS - t0 ))"); STAGE_RESULTS+=("ok")
        else
            printf 'warning: failed to stop the test cluster in %s\n' "$PG_DIR" >&2
            STAGE_NAMES+=("stop PostgreSQL"); STAGE_SECS+=("$(( SECONDS - t0 ))"); STAGE_RESULTS+=("FAILED (ignored)")
        fi
        PG_DIR=""
    fi
    if [ -n "$PG_TMP" ]; then
        rmdir -- "$PG_TMP" 2>/dev/null || true
        PG_TMP=""
    fi
}

on_exit() {
    local rc=$?
    set +e
    if [ -n "$CURRENT_STAGE" ]; then
        end_stage "FAILED (exit $rc)"
    fi
    stop_cluster
    print_summary
    if [ "$rc" -ne 0 ] && [ -n "$STAGE_LOG" ] && [ -f "$STAGE_LOG" ]; then
        printf '\n== The last 15 lines of the failed stage\n'
        tail -n 15 -- "$STAGE_LOG"
    fi
    [ -n "$STAGE_LOG" ] && rm -f -- "$STAGE_LOG"
    if [ -n "${TEST_LOG:-}" ] && [ -f "$TEST_LOG" ] && [ "${TEST_RC:-0}" -ne 0 ]; then
        printf '\n== Failed tests\n'
        grep -E '^ +(FAIL|TIMEOUT|SIGSEGV|SIGABRT) ' -- "$TEST_LOG" | sort -u | tail -n 15 || true
    fi
    print_counts
    if [ "$rc" -eq 0 ]; then
        printf '\nAll stages passed.\n'
    else
        printf '\nFAILED with exit code %s.\n' "$rc"
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

printf 'Switchboard tests in %s\n' "$ROOT"
printf '  %s\n  %s\n' "$(cargo --version)" "$(rustc --version)"

# ---------------------------------------------------------------------------
# Stages 1-2: lint
# ---------------------------------------------------------------------------
if [ "${SKIP_LINT:-0}" = "1" ]; then
    printf '\nSKIP_LINT=1: skipping stages 1-2 (fmt, clippy)\n'
    skip_stage "1. cargo fmt --check" "SKIP_LINT=1"
    skip_stage "2. cargo clippy" "SKIP_LINT=1"
else
    begin_stage "1. cargo fmt --check"
    cargo fmt --all -- --check
    end_stage ok

    begin_stage "2. cargo clippy"
    cargo clippy --workspace --all-targets -- -D warnings
    end_stage ok
fi

# ---------------------------------------------------------------------------
# Stage 3: throwaway PostgreSQL
# ---------------------------------------------------------------------------
begin_stage "3. start PostgreSQL"
# Under /tmp (not $TMPDIR): short enough for the Unix socket path and
# reachable by the postgres user when we run as root.
PG_TMP=$(mktemp -d /tmp/switchboard-test.XXXXXX)
chmod 755 "$PG_TMP"
PG_DIR=$PG_TMP/pg
SWITCHBOARD_TEST_POSTGRES_URL=$(./scripts/pg-cluster.sh start "$PG_DIR")
export SWITCHBOARD_TEST_POSTGRES_URL
printf 'SWITCHBOARD_TEST_POSTGRES_URL=%s\n' "$SWITCHBOARD_TEST_POSTGRES_URL"
end_stage ok

# ---------------------------------------------------------------------------
# Stage 3b: the real MCP clients and the conformance suite (Node 22, the
# Python and TypeScript SDKs, the Inspector CLI), cached in target/mcp-tools
# ---------------------------------------------------------------------------
begin_stage "3b. MCP client tools"
SWITCHBOARD_MCP_TOOLS=${SWITCHBOARD_MCP_TOOLS:-$ROOT/target/mcp-tools}
export SWITCHBOARD_MCP_TOOLS
TOOL_PATHS=$(./scripts/mcp-tools.sh)
printf '%s\n' "$TOOL_PATHS"
# chromium= is empty when Chromium is missing (not root, not CI): the browser
# tests then fail saying how to install it.
CHROMIUM_BIN=$(sed -n 's/^chromium=//p' <<<"$TOOL_PATHS")
if [ -n "$CHROMIUM_BIN" ]; then
    export SWITCHBOARD_CHROMIUM=$CHROMIUM_BIN
    printf 'SWITCHBOARD_CHROMIUM=%s\n' "$SWITCHBOARD_CHROMIUM"
else
    printf 'warning: no headless Chromium; the OAuth browser tests will fail (as root: apt-get install -y --no-install-recommends chromium)\n' >&2
fi
end_stage ok

# ---------------------------------------------------------------------------
# Stage 4: build + run tests
# ---------------------------------------------------------------------------
if cargo nextest --version >/dev/null 2>&1; then
    RUNNER=nextest
else
    RUNNER=cargo-test
    printf '\ncargo-nextest not found; falling back to cargo test\n'
fi

begin_stage "4a. build tests ($RUNNER)"
if [ "$RUNNER" = nextest ]; then
    cargo nextest run --workspace --no-run "$@"
else
    cargo test --workspace --no-run "$@"
fi
end_stage ok

begin_stage "4b. run tests ($RUNNER)"
TEST_LOG=$(mktemp /tmp/switchboard-test-log.XXXXXX)
set +e
if [ "$RUNNER" = nextest ]; then
    cargo nextest run --workspace --no-fail-fast "$@" 2>&1 | tee "$TEST_LOG"
else
    cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$TEST_LOG"
fi
TEST_RC=${PIPESTATUS[0]}
set -e
if [ "$TEST_RC" -eq 0 ]; then end_stage ok; else end_stage "FAILED (exit $TEST_RC)"; fi

# ---------------------------------------------------------------------------
# Stage 5: the MCP benchmark in smoke mode (a few hundred requests per
# scenario on the test build's own binaries, SKIP_BUILD=1): it proves the benchmark runs and every
# request succeeds under load; the figures themselves come from a full
# release run by hand (bench/README.md).
# ---------------------------------------------------------------------------
# The test build made the binaries the smoke needs; a filtered run may not have.
SKIP_BUILD=0
if [[ -x target/debug/switchboard && -x target/debug/switchboard-test-upstream && -x target/debug/examples/bench_ceiling ]]; then
    SKIP_BUILD=1
fi
STAGE_LOG=$(mktemp /tmp/switchboard-stage-log.XXXXXX)
begin_stage "5. benchmark smoke (bench/mcp.sh)"
SMOKE=1 PROFILE=debug SKIP_BUILD=$SKIP_BUILD ./bench/mcp.sh </dev/null 2>&1 | tee "$STAGE_LOG"
end_stage ok

begin_stage "5b. benchmark smoke (bench/gateway.sh)"
SMOKE=1 PROFILE=debug SKIP_BUILD=$SKIP_BUILD ./bench/gateway.sh </dev/null 2>&1 | tee "$STAGE_LOG"
end_stage ok
rm -f -- "$STAGE_LOG"
STAGE_LOG=""

exit "$TEST_RC"
