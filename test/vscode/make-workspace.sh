#!/usr/bin/env bash
# Makes the repository the VS Code suite opens: one commit with a sandbox.toml and the test image's context.
#   test/vscode/make-workspace.sh DIR
set -euo pipefail
dir=${1:?usage: $0 DIR}
here=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
git init -q -b main
printf '# UI test project\n' > README.md
bash "$here/scripts/make-image-context.sh" .sandbox
cat > sandbox.toml <<'TOML'
[sandbox.container]
dockerfile = ".sandbox/Dockerfile"
network = "none"
memory = "256m"
cpus = 1
pids = 256

[agents.engineer]
command = ["sh", "-c", "echo \"task: $SANDBOX_TASK\"; i=1; while [ $i -le 5 ]; do echo \"step $i\"; i=$((i+1)); sleep 0.3; done; echo hello > hello.txt; git add hello.txt; git commit -q -m 'agent: hello' >/dev/null 2>&1; echo changed >> README.md; echo done; exec sleep 600"]

# An interactive agent: a shell with a terminal, attached to with Attach to Agent.
[agents.shell]
interactive = true
command = ["sh"]

[agents.quick]
command = ["sh", "-c", "echo quick; exit 3"]

[agents.guarded]
network = "nat"
allow = ["allowed.test"]
secrets = ["UI_TEST_TOKEN"]
command = ["sh", "-c", "echo \"token: $UI_TEST_TOKEN\"; printf 'CONNECT denied.test:443 HTTP/1.1\\r\\n\\r\\n' | nc 127.0.0.1 3128 > /dev/null; echo probed; exec sleep 600"]
TOML
git add -A
git -c user.name=Test -c user.email=test@example.invalid commit -q -m "UI test project"
