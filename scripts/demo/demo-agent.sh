#!/bin/sh
# A stand-in coding agent for the demo: it reads its task, works for a while, commits part of its work and
# leaves the rest uncommitted, as real agents do.
set -e
say() { printf '[demo-agent] %s\n' "$*"; }
say "task: ${SANDBOX_TASK:-none}"
say "running as uid $(id -u) in $(pwd); network interfaces: $(ls /sys/class/net | tr "\n" " ")"
git status --short
step=1
for word in Reading Planning Writing Testing; do
  say "step $step: $word..."
  step=$((step + 1))
  sleep 8
done
cat > greeting.sh <<'SH'
#!/bin/sh
# Written by the demo agent.
echo "Hello from a sandboxed agent, ${1:-world}!"
SH
chmod +x greeting.sh
git add greeting.sh
git commit -q -m "Add greeting.sh"
say "committed: $(git log -1 --format='%h %s')"
sh ./greeting.sh sandbox
echo "- greeting.sh says hello (added by the demo agent)" >> README.md
say "left README.md changed but uncommitted, for you to review"
git status --short
say "done; staying up a while so you can attach a shell (Attach Shell, or agent-sandbox exec NAME -- sh)"
sleep 300
