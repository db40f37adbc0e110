#!/usr/bin/env bash
# The benchmark (npm run bench): `agent-sandbox up` against a raw `git worktree add` + `docker run` floor,
# `logs --follow` throughput against `docker logs -f`, and 10 sandboxes at once against 10 in a row.
#   scripts/bench.sh [--runs N]
# Prints a table and a JSON summary, also written to .test-artifacts/bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/engine.sh ensure
npm run build
npx tsc -p .
node out/test/bench/bench.js "$@"
