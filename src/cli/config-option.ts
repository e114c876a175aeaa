// Owns: the `--config FILE` option every verb takes, and where its default comes from
// (TOLLGATE_CONFIG, then ./tollgate.yaml).
import type { Command } from 'commander';

export function addConfigOption(cmd: Command): Command {
  return cmd.option('-c, --config <file>', 'gateway configuration file (default: $TOLLGATE_CONFIG or ./tollgate.yaml)');
}

export function configPath(opts: { config?: string }): string {
  return opts.config ?? process.env['TOLLGATE_CONFIG'] ?? 'tollgate.yaml';
}
