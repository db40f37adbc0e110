import { SECRETS_FROM_ENV } from '../core/isolation/secrets';
import { errorMessage, SandboxError } from '../core/errors';
import type { NextStep } from '../core/errors';

/** A next step as a terminal user takes it: a command line to run, or nothing where the message says it all. */
export function stepInWords(step: NextStep): string | undefined {
  switch (step.do) {
    case 'list-sandboxes':
      return 'List them: agent-sandbox ls';
    case 'remove-sandbox':
      return step.force ? `Remove it anyway: agent-sandbox rm --force ${step.sandbox}` : `Remove it: agent-sandbox rm ${step.sandbox}`;
    case 'start-sandbox':
      return `Start it: agent-sandbox start ${step.sandbox}`;
    case 'stop-a-sandbox':
      return 'Stop one: agent-sandbox stop NAME (agent-sandbox ls lists them)';
    case 'sync':
      return `Take it: agent-sandbox sync ${step.sandbox} --mode ${step.mode}${step.onConflict ? ` --on-conflict ${step.onConflict}` : ''}`;
    case 'review-changes':
      return `See what it changed: agent-sandbox diff ${step.sandbox} --stat`;
    case 'set-secret': {
      const them = step.names.length === 1 ? 'it' : 'them';
      return `Export ${them} in the environment agent-sandbox runs in, and let ${them} pass: ${SECRETS_FROM_ENV}=${step.names.join(',')}`;
    }
    case 'choose-base':
      return 'Pass --base with a branch, tag or commit that exists.';
    case 'overwrite-patch':
      return 'Choose another file with --output, or overwrite it with --force.';
    case 'allow':
      return `Allow it for agent-sandbox: ${step.env}=${step.value}${step.value === '1' ? '' : ` (more than one: separated by ${step.env.endsWith('PATHS') ? '":"' : 'commas'})`}`;
    // The message names the file and line; the engine's own hint says how to start it from a terminal.
    case 'open-config':
    case 'start-podman':
    case 'retry':
      return undefined;
  }
}

/** What `agent-sandbox` prints for an error: what happened, the hint, then each next step on a line of its own. */
export function errorForTerminal(error: unknown): string {
  if (!(error instanceof SandboxError)) return errorMessage(error);
  const steps = error.next.map(stepInWords).filter((line): line is string => Boolean(line));
  return [error.describe(), ...steps].join('\n');
}
