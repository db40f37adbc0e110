#!/usr/bin/env bash
# The VS Code test suite (test/vscode/suite) inside a real VS Code, the oldest one engines.vscode claims (1.100.3)
# and the current one (1.139.1): installs each VS Code server once into a cache folder (scripts/vscode-server.sh),
# builds the extension and the tests, then runs the suite in the server's workbench opened by Debian's chromium.
# Exit code: 0 when every test passed in every VS Code.
#   bash scripts/test-vscode.sh [--workspace DIR] [--screenshot FILE] [--timeout SECONDS] [--keep]
# Env: AGENT_SANDBOX_VSCODE=1.100 or current runs in that one only; AGENT_SANDBOX_VSCODE_GREP=PATTERN runs only the
# matching tests; any other variable reaches the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund   # a fresh clone
npm run --silent build
npx tsc -p .

versions=${AGENT_SANDBOX_VSCODE:-1.100 current}
# The activation test checks that the tests run in the VS Code they were meant for.
use_vscode() {
  AGENT_SANDBOX_VSCODE_SERVER="$(AGENT_SANDBOX_VSCODE=$1 bash scripts/vscode-server.sh)"
  case $1 in 1.100) AGENT_SANDBOX_EXPECT_VSCODE=1.100 ;; current) AGENT_SANDBOX_EXPECT_VSCODE=1.139 ;; esac
  export AGENT_SANDBOX_VSCODE_SERVER AGENT_SANDBOX_EXPECT_VSCODE
}

# With --workspace: one run on that folder, in the first VS Code of the list.
case " $* " in *" --workspace "*) use_vscode "${versions%% *}"; exec node out/test/vscode/runInServer.js "$@" ;; esac

# Without: the suite's own repository, run twice per VS Code. Phase "main" drives every command and leaves a
# sandbox running; phase "reattach" is a new VS Code and extension host on the same repository; phase "plain" a
# folder that is not a git repository (its own sandbox.toml activates the extension).
scratch=""
cleanup() {
  [ -n "$scratch" ] || return 0
  local workspace="$scratch/project"
  docker ps -aq --filter "label=dev.agent-sandboxes.workspace=$workspace" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker ps -aq --filter "label=dev.agent-sandboxes.egress-workspace=$workspace" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker volume ls -q --filter "label=dev.agent-sandboxes.egress-workspace=$workspace" | xargs -r docker volume rm >/dev/null 2>&1 || true
  rm -rf "$scratch"
  scratch=""
}
trap cleanup EXIT
mkdir -p .test-artifacts
for vscode in $versions; do
  use_vscode "$vscode"
  echo "test-vscode: the suite in VS Code $AGENT_SANDBOX_EXPECT_VSCODE" >&2
  scratch=$(mktemp -d)
  workspace="$scratch/project"
  bash test/vscode/make-workspace.sh "$workspace"
  AGENT_SANDBOX_TEST_PHASE=main node out/test/vscode/runInServer.js --workspace "$workspace" --screenshot ".test-artifacts/vscode-$vscode-main.png" "$@"
  AGENT_SANDBOX_TEST_PHASE=reattach node out/test/vscode/runInServer.js --workspace "$workspace" --screenshot ".test-artifacts/vscode-$vscode-reattach.png" "$@"
  mkdir -p "$scratch/plain" && cp "$workspace/sandbox.toml" "$scratch/plain/"
  AGENT_SANDBOX_TEST_PHASE=plain GIT_CEILING_DIRECTORIES="$scratch" node out/test/vscode/runInServer.js --workspace "$scratch/plain" --screenshot ".test-artifacts/vscode-$vscode-plain.png" "$@"
  cleanup
done
