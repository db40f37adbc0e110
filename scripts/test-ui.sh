#!/usr/bin/env bash
# The extension used as a person would, in a real VS Code 1.100.3 (the VS Code server from scripts/vscode-server.sh,
# opened by Debian's chromium, no test entry): the Sandboxes view, a sandbox started by the CLI showing up in it,
# its inline Stop action, the status bar's quick pick and the sandbox's logs. Screenshots go to .test-artifacts/ui/.
#   bash scripts/test-ui.sh
# Exit code: 0 when every step passed.
set -euo pipefail
cd "$(dirname "$0")/.."

AGENT_SANDBOX_VSCODE_SERVER="$(bash scripts/vscode-server.sh)"
export AGENT_SANDBOX_VSCODE_SERVER
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund   # a fresh clone

npm run --silent build
npx tsc -p .
node out/test/vscode/ui.js
