#!/usr/bin/env bash
# Installs the real agent CLIs the end-to-end tests drive (offline, against scripted model servers on
# 127.0.0.1) into the git-ignored test cache: Claude's ACP adapter (it bundles the native `claude`),
# opencode, the Gemini CLI and Codex's ACP adapter (it depends on `@openai/codex`, which ships the native
# `codex` in its platform package). Each agent has its own folder and version stamp, $CACHE/agents/<name>/,
# so changing one agent's version reinstalls that agent only. Re-running is a no-op when the pinned
# versions are already there.
set -euo pipefail

CLAUDE_ACP_VERSION="${CLAUDE_ACP_VERSION:-0.101.0}"
OPENCODE_VERSION="${OPENCODE_VERSION:-1.18.33}"
GEMINI_CLI_VERSION="${GEMINI_CLI_VERSION:-0.61.0}"
CODEX_ACP_VERSION="${CODEX_ACP_VERSION:-2.6.0}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${AGENT_TABS_TEST_CACHE:-$ROOT/.vscode-test}"
AGENTS="$CACHE/agents"
# Earlier versions of this script installed claude and opencode together into $AGENTS itself, stamped in
# $AGENTS/.versions. Such an install is adopted (linked, not copied or reinstalled) when its version is the
# pinned one, and it is never deleted: an older checkout may still be using it.
LEGACY_STAMP="$AGENTS/.versions"
# shellcheck source=lib/clean-npm-env.sh
source "$ROOT/scripts/lib/clean-npm-env.sh"
clean_npm_env

# install_agent NAME PACKAGE VERSION BIN: makes $AGENTS/NAME/node_modules/.bin/BIN the pinned version.
install_agent() {
	local name="$1" package="$2" version="$3" bin="$4"
	local dir="$AGENTS/$name" want="$2@$3"
	if [[ -f "$dir/.version" && "$(cat "$dir/.version")" == "$want" && -x "$dir/node_modules/.bin/$bin" ]]; then
		echo "[install-test-agents] $want already in $dir"
		return 0
	fi
	if [[ -f "$LEGACY_STAMP" && " $(cat "$LEGACY_STAMP") " == *" ${package##*/}@$version "* && -x "$AGENTS/node_modules/.bin/$bin" ]]; then
		# Whatever else is in this agent's folder (another version, a broken install) makes way for the link.
		[[ -L "$dir/node_modules" ]] || rm -rf "$dir"
		mkdir -p "$dir"
		ln -sfn ../node_modules "$dir/node_modules"
		echo "$want" >"$dir/.version"
		echo "[install-test-agents] $want already in $AGENTS (linked from $dir)"
		return 0
	fi
	echo "[install-test-agents] installing $want into $dir"
	# Only this agent's folder; a legacy node_modules it linked to stays.
	rm -rf "$dir"
	mkdir -p "$dir"
	# --foreground-scripts: opencode's postinstall puts its native binary in place.
	npm install --no-save --no-audit --no-fund --prefix "$dir" --foreground-scripts "$want" >"$dir/install.log" 2>&1 \
		|| { tail -40 "$dir/install.log"; exit 1; }
	[[ -x "$dir/node_modules/.bin/$bin" ]] || { echo "[install-test-agents] $bin missing after install"; tail -40 "$dir/install.log"; exit 1; }
	echo "$want" >"$dir/.version"
}

mkdir -p "$AGENTS"
install_agent claude @agentclientprotocol/claude-agent-acp "$CLAUDE_ACP_VERSION" claude-agent-acp
install_agent opencode opencode-ai "$OPENCODE_VERSION" opencode
install_agent gemini @google/gemini-cli "$GEMINI_CLI_VERSION" gemini
install_agent codex @agentclientprotocol/codex-acp "$CODEX_ACP_VERSION" codex-acp
echo "[install-test-agents] done"
