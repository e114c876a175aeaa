// Test-only: runs `tollgate …` through the real CLI entry (main()) in this process — many times
// faster than starting tsx per call — with environment overrides and stdout/stderr captured.
// Calls are serialised: they share process.env and the output streams.
import { main } from '../../src/cli/main.ts';

export interface CliResult { stdout: string; stderr: string; code: number }

let queue: Promise<unknown> = Promise.resolve();

export function cliInProcess(args: string[], env: Record<string, string | undefined>): Promise<CliResult> {
  const run = async (): Promise<CliResult> => {
    const saved = { ...process.env };
    const write = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
    const captured = { out: '', err: '' };
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    process.exitCode = undefined;
    process.stdout.write = ((c: string | Uint8Array) => { captured.out += String(c); return true; }) as typeof process.stdout.write;
    process.stderr.write = ((c: string | Uint8Array) => { captured.err += String(c); return true; }) as typeof process.stderr.write;
    try {
      const code = await main(['node', 'tollgate', ...args]);
      return { stdout: captured.out, stderr: captured.err, code };
    } finally {
      process.stdout.write = write.out;
      process.stderr.write = write.err;
      process.exitCode = undefined;
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  };
  const p = queue.then(run, run);
  queue = p.catch(() => undefined);
  return p;
}
