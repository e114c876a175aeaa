// Owns: running a planned command in the foreground the way a shell would — stdio and tty shared,
// signals passed on, and the command's exit (code or signal) handed back for the CLI to mirror.
import { constants } from 'node:os';
import { launchSandbox, type SandboxExit } from './launch-sandbox.ts';
import type { SandboxPlan } from './plan-sandbox.ts';

/** Signals always passed on to the command. */
const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'];
/** Signals a terminal sends to the whole foreground process group: the command has them already
 *  when stdin is a terminal, so they are passed on only otherwise (no double Ctrl-C). */
const TERMINAL: NodeJS.Signals[] = ['SIGINT', 'SIGQUIT'];

export async function runSandboxed(plan: SandboxPlan, opts: { interactive?: boolean; onBridgeError?: (err: Error) => void } = {}): Promise<SandboxExit> {
  const interactive = opts.interactive ?? process.stdin.isTTY === true;
  // Handlers first: the command runs (and may print) before launchSandbox returns, and a signal in
  // that window must reach it rather than end tollgate by default. Such a signal waits for the pid.
  let proc: Awaited<ReturnType<typeof launchSandbox>> | undefined;
  const early: NodeJS.Signals[] = [];
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const sig of [...FORWARDED, ...TERMINAL]) {
    const h = () => {
      if (interactive && TERMINAL.includes(sig)) return;
      if (proc) proc.kill(sig);
      else early.push(sig);
    };
    handlers.set(sig, h);
    process.on(sig, h);
  }
  try {
    proc = await launchSandbox(plan, { stdio: ['inherit', 'inherit', 'inherit'], ...(opts.onBridgeError ? { onBridgeError: opts.onBridgeError } : {}) });
    for (const sig of early) proc.kill(sig);
    return await proc.exited;
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
  }
}

/** The exit status a shell would report: the code, or 128 + the signal number. */
export function exitStatus(exit: SandboxExit): number {
  if (exit.code !== null) return exit.code;
  const n = exit.signal ? (constants.signals as Record<string, number>)[exit.signal] : undefined;
  return 128 + (n ?? 1);
}
