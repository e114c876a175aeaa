// Owns: `tollgate run [--team T] [--project P] [--no-sandbox] -- COMMAND…` — argument parsing
// around the sandbox: resolve the login and CA, plan, then run in the foreground and mirror the
// command's exit.
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { TollgateError } from '../errors.ts';
import { resolveClient } from '../onboarding/resolve-client.ts';
import { redactProxyUrl } from '../onboarding/claude-settings.ts';
import { NO_SANDBOX_WARNING, planSandbox, SandboxPlanError, type SandboxPlan } from '../sandbox/plan-sandbox.ts';
import { exitStatus, runSandboxed } from '../sandbox/run-sandboxed.ts';
import { requireSandboxSupport } from '../sandbox/sandbox-support.ts';
import { addConfigOption } from './config-option.ts';

export const HOLDER_SCRIPT = fileURLToPath(new URL('../sandbox/namespace-holder.mjs', import.meta.url));

interface RunOptions { config?: string; team?: string; project?: string; sandbox: boolean; caFile?: string; dryRun?: boolean }

function describePlan(plan: SandboxPlan): string {
  const r = (s: string) => redactProxyUrl(s);
  const lines = plan.steps.map((s, i) => `${i + 1}. ${s.text}${'argv' in s ? `\n   $ ${s.argv.map(r).join(' ')}` : ''}`);
  const env = Object.entries(plan.env).filter(([k]) => /PROXY|CA_|CA_CERTS|CAINFO|CERT_FILE|TOLLGATE_/.test(k)).map(([k, v]) => `   ${k}=${r(v)}`);
  return `${lines.join('\n')}\nenvironment:\n${env.join('\n')}\n`;
}

export function registerRunCommand(program: Command): void {
  addConfigOption(program.command('run').description('run a command whose only way out is the gateway (Linux network namespace)'))
    .usage('[options] -- COMMAND [ARGS…]')
    .argument('<command...>', 'the command and its arguments, after --')
    .option('--team <team>', 'act for this team (default: your only team)')
    .option('--project <project>', 'act for this project of the team')
    .option('--no-sandbox', 'ADVISORY ONLY: set the proxy variables without network isolation')
    .option('--ca-file <file>', "the gateway's CA certificate (default: $TOLLGATE_CA_FILE, the login's, or tollgate.yaml's)")
    .option('--dry-run', 'print the plan (steps, argv, environment; token redacted) and run nothing')
    .action(async (command: string[], opts: RunOptions) => {
      const client = resolveClient({ team: opts.team, project: opts.project, caFile: opts.caFile, configFile: opts.config });
      let plan: SandboxPlan;
      try {
        plan = opts.sandbox
          ? planSandbox({ command, env: process.env, proxyUrl: client.proxyUrl, caBundlePath: client.caBundlePath, tools: requireSandboxSupport(), holderScript: HOLDER_SCRIPT })
          : planSandbox({ command, env: process.env, proxyUrl: client.proxyUrl, caBundlePath: client.caBundlePath, mode: 'none' });
      } catch (err) {
        if (err instanceof SandboxPlanError) throw new TollgateError('TOLLGATE_ERR_USAGE', err.message);
        throw err;
      }
      if (opts.dryRun) {
        process.stdout.write(describePlan(plan));
        return;
      }
      if (plan.mode === 'none') process.stderr.write(`${NO_SANDBOX_WARNING}\n`);
      const exit = await runSandboxed(plan, {
        onBridgeError: (err) => process.stderr.write(`tollgate: connection to the gateway failed: ${err.message}\n`),
      });
      process.exitCode = exitStatus(exit);
      // Die of the same signal, so that a calling shell sees what it would have seen without us.
      if (exit.signal) process.kill(process.pid, exit.signal);
    });
}
