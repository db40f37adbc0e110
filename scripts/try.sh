#!/usr/bin/env bash
# A newcomer's try-out: installs what is missing, starts an engine if none answers, builds, makes a demo
# repository and runs a demo agent in a sandbox, streaming its output.
#   npm run try        (or: bash scripts/try.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)

bash scripts/setup.sh
npm run --silent build

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
echo "try: starting sandbox $name (Ctrl-C detaches; the agent keeps running)" >&2
$cli up "$name" --agent demo --task "Add a greeting script" --follow
echo
$cli ls
echo
echo "The agent's commits, on branch sandbox/$name:"
git log --oneline "main..sandbox/$name"
cat <<TXT

Next:
  cd $demo
  $cli logs $name                  # the agent's whole output again
  git log -p main..sandbox/$name   # what it committed
  git merge sandbox/$name          # take its commits
  $cli rm --force $name            # remove its container, worktree and branch
TXT
