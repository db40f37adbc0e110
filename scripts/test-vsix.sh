#!/usr/bin/env bash
# The README's install path, as a new user takes it: a fresh copy of the project (its tracked and unignored
# files, nothing built), `npm ci && npm run package`, then the .vsix installed into a real VS Code 1.100 (the VS
# Code server) with no development path, where it must activate, answer from the engine and bring up a sandbox
# with an egress allowlist.
#   bash scripts/test-vsix.sh
set -euo pipefail
cd "$(dirname "$0")/.."
AGENT_SANDBOX_VSCODE_SERVER="$(bash scripts/vscode-server.sh)"
export AGENT_SANDBOX_VSCODE_SERVER
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
node out/test/vscode/vsix.js "$fresh/dist/agent-sandboxes.vsix"
