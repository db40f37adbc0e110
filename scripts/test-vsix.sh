#!/usr/bin/env bash
# The README's install path, as a new user takes it: a fresh copy of the project (its tracked and unignored
# files, nothing built), `npm ci && npm run package`, then the .vsix installed into a real VS Code (the VS Code
# server) with no development path, where it must activate, answer from the engine and bring up a sandbox with
# an egress allowlist: in the oldest VS Code engines.vscode claims (1.100) and in the current one (1.139).
#   bash scripts/test-vsix.sh [1.100|current]...
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- 1.100 current
fresh=$(mktemp -d "${TMPDIR:-/tmp}/agent-sandboxes-fresh-XXXXXX")
trap 'rm -rf "$fresh" "$fresh.log"' EXIT
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -xf - -C "$fresh"
echo "test-vsix: npm ci && npm run package in a fresh copy ($fresh)" >&2
if ! (cd "$fresh" && npm ci --no-audit --no-fund --prefer-offline && npm run --silent package) >"$fresh.log" 2>&1; then
  echo "test-vsix: npm ci && npm run package failed in a fresh copy:" >&2; tail -30 "$fresh.log" >&2; exit 1
fi
tail -1 "$fresh.log" >&2
npx tsc -p .
for vscode in "$@"; do
  AGENT_SANDBOX_VSCODE_SERVER="$(AGENT_SANDBOX_VSCODE=$vscode bash scripts/vscode-server.sh)" node out/test/vscode/vsix.js "$fresh/dist/agent-sandboxes.vsix"
done
