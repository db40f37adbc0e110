#!/usr/bin/env bash
# The VS Code test suite (test/vscode/suite) inside a real VS Code 1.100.3: installs the VS Code server once into a
# cache folder (scripts/vscode-server.sh), builds the extension and the tests, then runs the suite in the server's
# workbench opened by Debian's chromium. Exit code: 0 when every test passed.
#   bash scripts/test-vscode.sh [--workspace DIR] [--screenshot FILE] [--timeout SECONDS] [--keep]
# Env: AGENT_SANDBOX_VSCODE_GREP=PATTERN runs only the matching tests; any other variable reaches the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

AGENT_SANDBOX_VSCODE_SERVER="$(bash scripts/vscode-server.sh)"
export AGENT_SANDBOX_VSCODE_SERVER
# The server is VS Code 1.100.3: the activation test checks that is what the tests run in.
export AGENT_SANDBOX_EXPECT_VSCODE="${AGENT_SANDBOX_EXPECT_VSCODE:-1.100}"
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund   # a fresh clone

npm run --silent build
npx tsc -p .

# Without --workspace: the suite's own repository, run twice. Phase "main" drives every command and leaves a
# sandbox running; phase "reattach" is a new VS Code and extension host on the same repository.
case " $* " in *" --workspace "*) exec node out/test/vscode/runInServer.js "$@" ;; esac
scratch=$(mktemp -d)
workspace="$scratch/project"
cleanup() {
  docker ps -aq --filter "label=dev.agent-sandboxes.workspace=$workspace" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker ps -aq --filter "label=dev.agent-sandboxes.egress-workspace=$workspace" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker volume ls -q --filter "label=dev.agent-sandboxes.egress-workspace=$workspace" | xargs -r docker volume rm >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup EXIT
bash test/vscode/make-workspace.sh "$workspace"
mkdir -p .test-artifacts
AGENT_SANDBOX_TEST_PHASE=main node out/test/vscode/runInServer.js --workspace "$workspace" --screenshot .test-artifacts/vscode-main.png "$@"
AGENT_SANDBOX_TEST_PHASE=reattach node out/test/vscode/runInServer.js --workspace "$workspace" --screenshot .test-artifacts/vscode-reattach.png "$@"
# A folder that is not a git repository (its own sandbox.toml activates the extension).
mkdir -p "$scratch/plain" && cp "$workspace/sandbox.toml" "$scratch/plain/"
AGENT_SANDBOX_TEST_PHASE=plain GIT_CEILING_DIRECTORIES="$scratch" node out/test/vscode/runInServer.js --workspace "$scratch/plain" --screenshot .test-artifacts/vscode-plain.png "$@"
