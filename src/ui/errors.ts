// What the user sees when something fails in the editor: one notification with what happened and the hint, whole,
// and a button for each next step the core named, plus Show Log. The CLI words the same steps in src/cli/errors.ts.
import type * as vscode from 'vscode';
import * as path from 'node:path';
import { errorMessage, SandboxError } from '../core/errors';
import { SECRETS_FROM_ENV_SETTING } from '../core/isolation/secrets';
import type { NextStep } from '../core/errors';
import { COMMAND } from './ids';

/** A button: its label, and the command it runs with its arguments. */
export interface StepButton {
  label: string;
  command: string;
  args: unknown[];
}

/** A next step as a button, or none where the editor has no single action for it. */
export function stepButton(step: NextStep, folder?: string): StepButton | undefined {
  switch (step.do) {
    case 'list-sandboxes':
      return { label: 'Refresh', command: COMMAND.refresh, args: [] };
    case 'remove-sandbox':
      return { label: step.force ? `Remove ${step.sandbox} Anyway...` : `Remove ${step.sandbox}...`, command: COMMAND.remove, args: [step.sandbox] };
    case 'start-sandbox':
      return { label: `Start ${step.sandbox}`, command: COMMAND.start, args: [step.sandbox] };
    case 'stop-a-sandbox':
      return { label: 'Stop a Sandbox...', command: COMMAND.stop, args: [] };
    case 'sync':
      return { label: 'Sync Back...', command: COMMAND.syncBack, args: [step.sandbox] };
    case 'review-changes':
      return { label: 'Review Changes', command: COMMAND.reviewChanges, args: [step.sandbox] };
    case 'set-secret':
      return { label: `Set ${step.names[0]}...`, command: COMMAND.setSecret, args: [step.names[0]] };
    case 'open-config': {
      const file = folder ? path.resolve(folder, step.file) : step.file;
      return { label: `Open ${path.basename(step.file)}`, command: COMMAND.openConfigAt, args: [file, step.line] };
    }
    case 'start-podman':
      return { label: "Start Podman's API Service", command: COMMAND.startPodmanService, args: [] };
    case 'retry':
      return { label: 'Retry', command: COMMAND.retry, args: [] };
    case 'allow':
      return { label: 'Open User Settings', command: 'workbench.action.openSettings', args: [step.setting] };
    // The editor asks for these as it goes (the base, where a patch goes).
    case 'choose-base':
    case 'overwrite-patch':
      return undefined;
  }
}

/** The notification's text and buttons for an error. */
export function presentError(error: unknown, folder?: string): { text: string; buttons: StepButton[] } {
  if (!(error instanceof SandboxError)) return { text: errorMessage(error), buttons: [] };
  const buttons = error.next.map((step) => stepButton(step, folder)).filter((b): b is StepButton => Boolean(b));
  const notes = error.next.flatMap((step) => {
    if (step.do === 'set-secret') return [`Or take ${step.names.length === 1 ? 'it' : 'them'} from the editor's environment: add ${step.names.length === 1 ? 'its name' : 'their names'} to the user setting ${SECRETS_FROM_ENV_SETTING}.`];
    if (step.do === 'allow') return [step.value === '1' ? `To allow it, turn on the user setting ${step.setting}.` : `To allow it, add ${step.value} to the user setting ${step.setting}.`];
    return [];
  });
  return { text: [error.message, error.hint, ...notes].filter(Boolean).join(' '), buttons };
}

const SHOW_LOG = 'Show Log';

/** Shows an error as presentError words it, and runs the button the user picks. */
export async function showError(
  error: unknown,
  editor: { window: Pick<typeof vscode.window, 'showErrorMessage'>; commands: Pick<typeof vscode.commands, 'executeCommand'> },
  log: Pick<vscode.LogOutputChannel, 'show'>,
  folder?: string,
  prefix = '',
): Promise<void> {
  const { text, buttons } = presentError(error, folder);
  const choice = await editor.window.showErrorMessage(`${prefix}${text}`, ...buttons.map((b) => b.label), SHOW_LOG);
  if (choice === SHOW_LOG) log.show();
  const button = buttons.find((b) => b.label === choice);
  if (button) await editor.commands.executeCommand(button.command, ...button.args);
}
