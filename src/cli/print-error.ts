// Owns: how the CLI reports a failure — the error code, the message, and file:line:col problems —
// and which exit code goes with it.
import { formatProblem, TollgateError } from '../errors.ts';

export function printError(err: unknown): number {
  if (err instanceof TollgateError) {
    process.stderr.write(`tollgate: ${err.message} [${err.code}]\n`);
    for (const p of err.problems) process.stderr.write(`  ${formatProblem(p)}\n`);
    return err.code === 'TOLLGATE_ERR_USAGE' ? 2 : 1;
  }
  process.stderr.write(`tollgate: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
}
