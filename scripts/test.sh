#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, starts an engine if none answers,
# builds, then runs the unit tests, the integration tests against the real engine, the same integration tests
# against Podman's Docker-compatible API, the extension's suite inside a real VS Code, and the UI test that
# clicks through that VS Code as a person would.
#   npm test            (or: bash scripts/test.sh)
# AGENT_SANDBOX_TEST_PODMAN=0 leaves Podman out (never on CI).
set -euo pipefail
cd "$(dirname "$0")/.."

# Node 20 is past its end of life: below 22, the suite runs on Node 24 instead (installed from the npm registry
# into the cache when the machine lacks it), and the unit tests once more on Node 22, as CI does.
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 22 ]; then
  node24=$(bash scripts/node.sh 24)
  echo "test: Node $(node --version) is past its end of life: running the suite on Node $("$node24" --version)" >&2
  PATH="$(dirname "$node24"):$PATH" exec bash "$0" "$@"
fi
bash scripts/setup.sh
say() { printf 'test: %s\n' "$*" >&2; }
source scripts/lib.sh
# The escape-attempt suite compiles its probe with gcc -static (a static libc).
if ! { command -v gcc >/dev/null 2>&1 && [ -e "$(gcc -print-file-name=libc.a)" ]; }; then
  apt_install "install gcc and a static libc (Debian: libc6-dev)" gcc libc6-dev
fi
# The interactive agents' test drives `agent-sandbox attach` on the pseudo-terminal tmux gives it.
command -v tmux >/dev/null 2>&1 || apt_install "install tmux" tmux
podman=${AGENT_SANDBOX_TEST_PODMAN:-1}
if [ -n "${CI:-}" ] && [ "$podman" != 1 ]; then echo "test: CI must run the Podman pass" >&2; exit 1; fi
# Podman from Debian's packages (podman, catatonit), its API service started if it does not answer.
if [ "$podman" = 1 ]; then bash scripts/podman.sh ensure; fi
# The engine-restart test restarts the engine through what runs it (this suite's scripts, or systemd on CI or
# with AGENT_SANDBOX_TEST_ENGINE_RESTART=1), and is skipped, saying why, where that cannot be done safely.
echo "test: restarting dockerd in the engine-restart test: $(bash scripts/engine.sh restartable 2>&1 || true)" >&2

npm run --silent build
npx tsc -p .
npx eslint .
node --test --test-concurrency=1 out/test/unit/*.test.js out/test/integration/*.test.js
node22=$(bash scripts/node.sh 22)
echo "test: the unit tests again, on Node $("$node22" --version)" >&2
"$node22" --test out/test/unit/*.test.js
if [ "$podman" = 1 ]; then
  # The same engine suite through Podman's Docker-compatible API; its restart test restarts Podman's API service.
  echo "test: the integration tests again, against Podman at $(bash scripts/podman.sh host)" >&2
  DOCKER_HOST="$(bash scripts/podman.sh host)" node --test --test-concurrency=1 out/test/integration/*.test.js
fi
bash scripts/test-vscode.sh
bash scripts/test-ui.sh
bash scripts/test-vsix.sh
