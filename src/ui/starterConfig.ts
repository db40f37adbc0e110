/** What "Create sandbox.toml" writes: every key optional, the common ones shown. */
export const STARTER_CONFIG = `# Agent Sandboxes: how agents run for this repository.
# Every key is optional; see the README of Agent Sandboxes for all of them.

[sandbox.container]
image = "node:20-bookworm"            # or: dockerfile = ".sandbox/Dockerfile"
network = "nat"                       # none | nat | host
cpus = 2
memory = "4g"
pids = 1024
# ports = ["3000"]                    # container port, or host:container (published on 127.0.0.1)
# volumes = ["./fixtures:/fixtures:ro"]
# env = { NODE_ENV = "development" }

[agents.engineer]
command = ["sh", "-c", "echo \\"Task: $SANDBOX_TASK\\"; ls -la"]

[orchestrator]
max_parallel_agents = 4
`;
