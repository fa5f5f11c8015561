#!/usr/bin/env bash
# Installs the real agent CLIs the end-to-end tests drive (offline, against scripted model servers on
# 127.0.0.1) into the git-ignored test cache: Claude's ACP adapter (it bundles the native `claude`) and
# opencode. Re-running is a no-op when the pinned versions are already there.
set -euo pipefail

CLAUDE_ACP_VERSION="${CLAUDE_ACP_VERSION:-0.101.0}"
OPENCODE_VERSION="${OPENCODE_VERSION:-1.18.33}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${AGENT_TABS_TEST_CACHE:-$ROOT/.vscode-test}"
DIR="$CACHE/agents"
STAMP="$DIR/.versions"
# shellcheck source=lib/clean-npm-env.sh
source "$ROOT/scripts/lib/clean-npm-env.sh"
clean_npm_env
WANT="claude-agent-acp@$CLAUDE_ACP_VERSION opencode-ai@$OPENCODE_VERSION"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
	echo "[install-test-agents] $WANT already in $DIR"
	exit 0
fi
echo "[install-test-agents] installing $WANT into $DIR"
rm -rf "$DIR"
mkdir -p "$DIR"
# --foreground-scripts: opencode's postinstall puts its native binary in place.
npm install --no-save --no-audit --no-fund --prefix "$DIR" --foreground-scripts \
	"@agentclientprotocol/claude-agent-acp@$CLAUDE_ACP_VERSION" "opencode-ai@$OPENCODE_VERSION" >"$DIR/install.log" 2>&1 \
	|| { tail -40 "$DIR/install.log"; exit 1; }
for bin in claude-agent-acp opencode; do
	[[ -x "$DIR/node_modules/.bin/$bin" ]] || { echo "[install-test-agents] $bin missing after install"; tail -40 "$DIR/install.log"; exit 1; }
done
echo "$WANT" >"$STAMP"
echo "[install-test-agents] done"
