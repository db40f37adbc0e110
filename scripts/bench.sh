#!/usr/bin/env bash
# The benchmark (npm run bench): `agent-sandbox up` against a raw `git worktree add` + `docker run` floor,
# `logs --follow` throughput against `docker logs -f`, 10 sandboxes at once against 10 in a row, sync back
# of 5,000 changed files in each mode against plain git, `up` with an egress allowlist, `up` of an agent
# preset's role (its CLI cached) against the same `up` without a preset, `attach` to an interactive agent
# until its screen shows (small and 20 MB logs) against `docker exec -it`, and activation in VS Code
# (test/bench: bench.ts runs the parts, one file each).
#   [BENCH_ONLY=up,logs,parallel,sync,egress,presets,attach,activation] scripts/bench.sh [--runs N] [--parallel N]
# Prints a table and a JSON summary, also written to .test-artifacts/bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/engine.sh ensure
npm run build
npx tsc -p .
node out/test/bench/bench.js "$@"
