#!/usr/bin/env bash
# Installs what Agent Sandboxes and its tests need and starts an engine if none answers. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'setup: %s\n' "$*" >&2; }
source scripts/lib.sh

missing=()
command -v git >/dev/null 2>&1 || missing+=(git)
# A static busybox builds the test and demo images without any container registry.
[ -x /bin/busybox ] && [[ "$(ldd /bin/busybox 2>&1 || true)" == *"not a dynamic"* ]] || missing+=(busybox-static)
[ ${#missing[@]} -eq 0 ] || apt_install "install them with your system's package manager" "${missing[@]}"
[ -d node_modules ] && [ node_modules -nt package-lock.json ] || npm ci --no-audit --no-fund
bash scripts/engine.sh ensure
