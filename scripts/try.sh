#!/usr/bin/env bash
# A newcomer's try-out: installs what is missing, starts an engine if none answers, builds, makes a demo
# repository, starts a demo agent in a sandbox, then opens the extension in a real VS Code on the demo
# repository while the agent is still at work:
#   - a desktop VS Code when `code` exists and there is a display: code --extensionDevelopmentPath=THIS_REPO DEMO;
#   - else the VS Code server (scripts/vscode-server.sh) on 127.0.0.1, serving until Ctrl-C: open the URL it
#     prints in a browser. Ctrl-C stops the server; the sandbox keeps running.
#   npm run try        (or: bash scripts/try.sh)
# Env: AGENT_SANDBOX_DEMO=DIR             the demo repository (default ~/agent-sandboxes-demo)
#      AGENT_SANDBOX_TRY_PORT=N           the server's port (default 8123; a free one when taken)
#      AGENT_SANDBOX_TRY_NO_EDITOR=1      open no editor, print what it would do
#      AGENT_SANDBOX_TRY_SMOKE=1          for CI: start the server, open its URL in headless chromium, wait for the
#                                         demo sandbox in the Sandboxes view, save .test-artifacts/try.png, exit
set -euo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)

bash scripts/setup.sh
npm run --silent build

# The editor, decided and made ready first, so that it opens while the agent is still at work.
if [ "${AGENT_SANDBOX_TRY_SMOKE:-}" != 1 ] && command -v code >/dev/null 2>&1 && [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  editor=desktop
else
  editor=server
  npx tsc -p .
  if [ "${AGENT_SANDBOX_TRY_NO_EDITOR:-}" != 1 ]; then
    AGENT_SANDBOX_VSCODE_SERVER="$(bash scripts/vscode-server.sh)"
    export AGENT_SANDBOX_VSCODE_SERVER
  fi
fi

demo=${AGENT_SANDBOX_DEMO:-$HOME/agent-sandboxes-demo}
if [ ! -d "$demo/.git" ]; then
  echo "try: making a demo repository in $demo" >&2
  mkdir -p "$demo"
  cd "$demo"
  git init -q -b main
  printf '# Demo project\n\nA small repository to watch an agent work in a sandbox.\n' > README.md
  # An image built from this machine's busybox and git, so the demo needs no registry.
  bash "$here/scripts/make-image-context.sh" .sandbox
  cp "$here/scripts/demo/demo-agent.sh" .sandbox/demo-agent.sh
  cat > sandbox.toml <<'TOML'
# Agent Sandboxes: how agents run for this repository. See the README for every key.
[sandbox.container]
dockerfile = ".sandbox/Dockerfile"
network = "none"
memory = "512m"
cpus = 1
pids = 256

[agents.demo]
command = ["sh", ".sandbox/demo-agent.sh"]
TOML
  git add -A
  git -c user.name=Demo -c user.email=demo@example.invalid commit -q -m "Demo project"
fi
cd "$demo"
name="demo-$(date +%H%M%S)"
cli="node $here/dist/cli.js"
echo "try: starting sandbox $name" >&2
$cli up "$name" --agent demo --task "Add a greeting script"
echo
$cli ls
cat <<TXT

The agent works for about ten seconds more: it commits greeting.sh and leaves README.md changed.
Next:
  cd $demo
  $cli logs --follow $name         # its output (Ctrl-C stops following; it keeps running)
  $cli diff $name                  # what it changed, committed or not
  $cli sync $name --mode squash    # take it into the working tree, for you to review and commit
  $cli rm --force $name            # remove its container, worktree and branch
In VS Code: the Sandboxes view, then the sandbox's "N files changed" row: Review Changes, Sync Back.

TXT

# The editor: this extension in a real VS Code on the demo repository.
port=${AGENT_SANDBOX_TRY_PORT:-8123}
serve=(node "$here/out/test/vscode/serve.js" --folder "$demo" --port "$port")
if [ "${AGENT_SANDBOX_TRY_NO_EDITOR:-}" = 1 ]; then
  echo "try: AGENT_SANDBOX_TRY_NO_EDITOR=1, so no editor. It would have:"
  if [ "$editor" = desktop ]; then
    echo "  run: code --extensionDevelopmentPath=$here $demo"
  else
    echo "  installed or located the VS Code server (scripts/vscode-server.sh), served it on 127.0.0.1:$port (a free port if taken) and printed:"
    echo "  $("${serve[@]}" --dry-run)"
  fi
  exit 0
fi
if [ "$editor" = desktop ]; then
  echo "try: opening VS Code with Agent Sandboxes on $demo: its Sandboxes view (activity bar) shows $name" >&2
  exec code --extensionDevelopmentPath="$here" "$demo"
fi

if [ "${AGENT_SANDBOX_TRY_SMOKE:-}" = 1 ]; then
  url_file=$(mktemp)
  "${serve[@]}" >"$url_file" &
  serve_pid=$!
  trap 'kill -TERM $serve_pid 2>/dev/null; wait $serve_pid 2>/dev/null || true; rm -f "$url_file"' EXIT
  for _ in $(seq 1 600); do
    [ -s "$url_file" ] && break
    kill -0 "$serve_pid" 2>/dev/null || { echo "try: the VS Code server did not start" >&2; exit 1; }
    sleep 0.1
  done
  [ -s "$url_file" ] || { echo "try: the VS Code server printed no URL within 60 s" >&2; exit 1; }
  url=$(head -1 "$url_file")
  echo "try: VS Code with Agent Sandboxes on $demo: $url"
  node "$here/out/test/vscode/trySmoke.js" "$url" "$name" "$here/.test-artifacts/try.png"
  exit 0
fi

echo "try: serving VS Code with Agent Sandboxes on $demo. Open the URL below in a browser; its Sandboxes view (activity bar) shows $name." >&2
trap ':' INT   # Ctrl-C is for the server: it stops, and this script says goodbye
status=0
"${serve[@]}" || status=$?
trap - INT
case $status in
  0|130|143) echo "try: the VS Code server stopped; sandbox $name keeps running (see Next above)." >&2 ;;
  *) exit "$status" ;;
esac
