// Owns: `tollgate env [--shell bash|zsh|fish|powershell]` — print the variables that point the
// current shell's tools at the gateway with the current login.
import { Command } from 'commander';
import { TollgateError } from '../errors.ts';
import { PLACEHOLDER_KEY } from '../onboarding/claude-settings.ts';
import { detectShell, formatShellEnv, isShellName, SHELLS } from '../onboarding/format-shell-env.ts';
import { resolveClient } from '../onboarding/resolve-client.ts';
import { proxyEnvironment } from '../sandbox/proxy-environment.ts';
import { addConfigOption } from './config-option.ts';

/** Desktop tools keep reaching local development servers directly. */
export const DESKTOP_NO_PROXY = 'localhost,127.0.0.1,::1';

export function envVariables(proxyUrl: string, caBundlePath: string, placeholders: boolean): Array<[string, string]> {
  const vars = proxyEnvironment({ proxyUrl, caBundlePath, noProxy: DESKTOP_NO_PROXY });
  if (placeholders) vars.push(['ANTHROPIC_API_KEY', PLACEHOLDER_KEY], ['OPENAI_API_KEY', PLACEHOLDER_KEY]);
  return vars;
}

export function registerEnvCommand(program: Command): void {
  addConfigOption(program.command('env').description('print shell variables that send your tools through the gateway'))
    .option('--shell <shell>', `one of ${SHELLS.join(', ')} (default: from $SHELL)`)
    .option('--team <team>', 'act for this team (default: your only team)')
    .option('--project <project>', 'act for this project of the team')
    .option('--ca-file <file>', "the gateway's CA certificate")
    .option('--no-placeholders', 'leave ANTHROPIC_API_KEY / OPENAI_API_KEY alone')
    .action((opts: { config?: string; shell?: string; team?: string; project?: string; caFile?: string; placeholders: boolean }) => {
      const shell = opts.shell ?? detectShell(process.env['SHELL']);
      if (!isShellName(shell)) throw new TollgateError('TOLLGATE_ERR_USAGE', `unknown shell "${shell}"; one of ${SHELLS.join(', ')}`);
      const client = resolveClient({ team: opts.team, project: opts.project, caFile: opts.caFile, configFile: opts.config });
      process.stdout.write(formatShellEnv(shell, envVariables(client.proxyUrl, client.caBundlePath, opts.placeholders)));
    });
}
