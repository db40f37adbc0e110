/** The key an agent secret is stored under in VS Code's secret storage. */
export function secretKey(name: string): string {
  return `agentSandboxes.secret.${name}`;
}
