#!/usr/bin/env bash
# Installs a real VS Code server once into a cache folder outside the repo, and prints the path of its
# server-main.js. Which VS Code: AGENT_SANDBOX_VSCODE=1.100 (the default: the oldest engines.vscode claims,
# inside the npm package code-server@4.100.3, which runs on Node 20) or current (VS Code 1.139.1, inside
# code-server@4.139.1, which runs on Node 24). Each runs on the Node.js it needs (scripts/node.sh finds or
# installs it), whatever Node runs the tests: its path is written beside the install, in .node.
# Safe to re-run and to run concurrently; takes well under a second once installed.
#   bash scripts/vscode-server.sh        -> .../code-server-4.100.3/node_modules/code-server/lib/vscode/out/server-main.js
# Env: AGENT_SANDBOX_CACHE (default ~/.cache/agent-sandboxes) is where it goes.
# Also installs the Debian packages the install and the tests need (native module headers, ripgrep, chromium).
# Everything but the printed path goes to stderr.
set -euo pipefail

case "${AGENT_SANDBOX_VSCODE:-1.100}" in
  1.100) version=4.100.3 vscode=1.100.3 node_major=20 ;;
  current) version=4.139.1 vscode=1.139.1 node_major=24 ;;
  *) printf 'vscode-server: AGENT_SANDBOX_VSCODE is 1.100 or current, not %s\n' "$AGENT_SANDBOX_VSCODE" >&2; exit 2 ;;
esac
cache="${AGENT_SANDBOX_CACHE:-$HOME/.cache/agent-sandboxes}"
dir="$cache/code-server-$version"
main="$dir/node_modules/code-server/lib/vscode/out/server-main.js"
stamp="$dir/.installed-ok"

say() { printf 'vscode-server: %s\n' "$*" >&2; }
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

ensure_packages() {
  # Headers for code-server's native modules, ripgrep (for the cache trick below), chromium (the tests' browser).
  local want=(libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config ripgrep chromium git)
  command -v make >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 || want+=(build-essential)
  command -v python3 >/dev/null 2>&1 || want+=(python3)
  local missing=() p
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_install "install them with your system's package manager" "${missing[@]}"
}

# Starts the installed server once on a free loopback port and checks it serves the workbench page.
verify_server() {
  node - "$main" <<'EOF'
const { spawn } = require('child_process');
const fs = require('fs'), os = require('os'), path = require('path'), net = require('net');
const main = process.argv[2];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vscode-server-check-'));
const srv = net.createServer().listen(0, '127.0.0.1', () => {
  const port = srv.address().port;
  srv.close(() => {
    const args = [main, '--host', '127.0.0.1', '--port', String(port), '--without-connection-token',
      '--accept-server-license-terms', '--disable-telemetry', '--user-data-dir', path.join(tmp, 'user'),
      '--server-data-dir', path.join(tmp, 'server'), '--extensions-dir', path.join(tmp, 'ext')];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', d => { out += d; });
    child.stderr.on('data', d => { out += d; });
    const done = (ok, why) => {
      clearInterval(poll); clearTimeout(timer);
      child.kill('SIGKILL');
      fs.rmSync(tmp, { recursive: true, force: true });
      if (!ok) { console.error(`server check failed: ${why}\n${out.slice(-3000)}`); process.exit(1); }
      console.error(`vscode-server: the server started and served the workbench on port ${port}`);
      process.exit(0);
    };
    child.on('exit', code => done(false, `server exited with ${code}`));
    const timer = setTimeout(() => done(false, 'no workbench page within 60 s'), 60000);
    const poll = setInterval(async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/`);
        const body = await res.text();
        if (res.status === 200 && body.includes('workbench')) {
          const product = JSON.parse(fs.readFileSync(path.join(path.dirname(main), '..', 'product.json'), 'utf8'));
          const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(main), '..', 'package.json'), 'utf8'));
          console.error(`vscode-server: VS Code ${pkg.version} (${product.nameShort || product.applicationName})`);
          done(true);
        }
      } catch { /* not listening yet */ }
    }, 500);
  });
});
EOF
}

ensure_packages
node_bin=$(bash "$(dirname "$0")/node.sh" "$node_major")
export PATH="$(dirname "$node_bin"):$PATH"

if [ -f "$stamp" ] && [ -f "$main" ]; then
  printf '%s\n' "$node_bin" >"$dir/.node"
  printf '%s\n' "$main"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.code-server-$version.lock"
flock 9
if [ -f "$stamp" ] && [ -f "$main" ]; then   # another run installed it while we waited
  printf '%s\n' "$node_bin" >"$dir/.node"
  printf '%s\n' "$main"
  exit 0
fi

say "installing code-server@$version (VS Code $vscode, on Node $("$node_bin" --version)) into $dir: 1 to 5 minutes, about 300 MB"
rm -rf "$dir"
mkdir -p "$dir"
printf '{ "name": "agent-sandboxes-vscode-server", "private": true }\n' >"$dir/package.json"
log="$dir/install.log"

# @vscode/ripgrep's postinstall downloads a ripgrep release unless it finds this tarball in its cache under the
# temp dir: Debian's rg in a gzipped tar satisfies it. A private TMPDIR keeps the trick to this install.
export TMPDIR="$dir/.tmp"
case "$(uname -m)" in
  x86_64) rg_target=x86_64-unknown-linux-musl ;;
  aarch64|arm64) rg_target=aarch64-unknown-linux-musl ;;
  *) say "no ripgrep cache name known for $(uname -m): the install will try to download ripgrep"; rg_target="$(uname -m)" ;;
esac
rg_cache="$TMPDIR/vscode-ripgrep-cache-1.15.11"
mkdir -p "$rg_cache" "$TMPDIR/rg"
cp "$(command -v rg)" "$TMPDIR/rg/rg"
chmod 755 "$TMPDIR/rg/rg"
tar -czf "$rg_cache/ripgrep-v13.0.0-10-$rg_target.tar.gz" -C "$TMPDIR/rg" rg

# Native modules build against the local Node's headers when they are there (no headers download).
if [ -z "${npm_config_nodedir:-}" ]; then
  node_prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
  [ -f "$node_prefix/include/node/node.h" ] && export npm_config_nodedir="$node_prefix"
fi

start=$SECONDS
if ! (cd "$dir" && npm_config_yes=true npm_config_unsafe_perm=true \
      npm install --no-audit --no-fund --no-save --loglevel=error "code-server@$version" >"$log" 2>&1); then
  say "npm install failed; last lines of $log:"
  tail -40 "$log" >&2
  exit 1
fi
if [ ! -f "$main" ]; then
  say "npm install finished but $main is missing; last lines of $log:"
  tail -40 "$log" >&2
  exit 1
fi
say "installed in $((SECONDS - start)) s; checking the server starts"
if ! verify_server; then
  say "the installed server does not start; install log: $log"
  exit 1
fi
rm -rf "$TMPDIR"
printf '%s\n' "$node_bin" >"$dir/.node"
date -u +%FT%TZ >"$stamp"
printf '%s\n' "$main"
