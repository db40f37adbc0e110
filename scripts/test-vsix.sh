#!/usr/bin/env bash
# Packs the extension with `vsce package` into a .vsix, installs it into a real VS Code 1.100 (the VS Code server)
# with no development path, and checks that the installed bundle activates and its view answers from the engine.
#   bash scripts/test-vsix.sh
set -euo pipefail
cd "$(dirname "$0")/.."
AGENT_SANDBOX_VSCODE_SERVER="$(bash scripts/vscode-server.sh)"
export AGENT_SANDBOX_VSCODE_SERVER
mkdir -p .test-artifacts
npx vsce package --no-dependencies --allow-missing-repository --no-rewrite-relative-links --out .test-artifacts/agent-sandboxes.vsix >/dev/null
npx tsc -p .
node out/test/vscode/vsix.js .test-artifacts/agent-sandboxes.vsix
# vsce's prepublish step left the production bundle in dist/: put the development build back for the other tests.
npm run --silent build >/dev/null
