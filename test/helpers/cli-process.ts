// Test-only: runs the real `bin/tollgate` as a child process (its own tsx start, its own SQLite
// connections) — for what needs a process of its own, such as a CLI writing to tollgate.db next to
// a gateway — and polls for a condition. tap's loader is dropped from NODE_OPTIONS, as tap adds it
// to the environment of every child.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { CliResult } from './cli-in-process.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/tollgate');
const execFileP = promisify(execFile);

/** Runs `tollgate ARGS --config CONFIG`; resolves with the exit code instead of rejecting. */
export async function runTollgate(args: readonly string[], config: string, timeoutMs = 90_000): Promise<CliResult> {
  try {
    const r = await execFileP('env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, ...args, '--config', config], { encoding: 'utf8', timeout: timeoutMs });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The `tollgate` command line that spawn() takes, for a process the test keeps running. */
export function tollgateCommand(args: readonly string[], config: string): [string, string[]] {
  return ['env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, ...args, '--config', config]];
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves once `ok()` holds; throws naming `what` after `ms`. */
export async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Whether `ok()` came to hold within `ms` (polled every 10 ms). */
export async function waitFor(ok: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) return false;
    await sleep(10);
  }
  return true;
}
