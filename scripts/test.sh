#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, starts an engine if none answers,
# builds, then runs the unit tests, the integration tests against the real engine, the extension's
# suite inside a real VS Code, and the UI test that clicks through that VS Code as a person would.
#   npm test            (or: bash scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
# The engine-restart test restarts dockerd: only when the running one is ours to restart.
if bash scripts/engine.sh owned; then export AGENT_SANDBOX_TEST_ENGINE_RESTART=1; fi

npm run --silent build
npx tsc -p .
node --test --test-concurrency=1 out/test/unit/ out/test/integration/
bash scripts/test-vscode.sh
bash scripts/test-ui.sh
bash scripts/test-vsix.sh
