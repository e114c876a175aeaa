// Owns: `tollgate token issue|revoke|list` — argument parsing and printing around the identity
// library; the token is printed once by `issue` (only after it and its audit event are committed)
// and never again.
import { Command } from 'commander';
import { databasePath, loadGatewayConfig } from '../config/gateway-config.ts';
import { tokenIssue, tokenList, tokenRevoke, type TokenListRow } from '../identity/token-commands.ts';
import { addConfigOption, configPath } from './config-option.ts';
import { printTable } from './print-table.ts';

function rowsOut(rows: TokenListRow[], json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return;
  }
  printTable(rows.map((r) => ({
    id: r.id, kind: r.kind, subject: r.subject, teams: r.teams.join(','), status: r.status,
    expires: r.expiresAt, last_used: r.lastUsedAt ?? '-',
  })));
}

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('issue, revoke and list gateway and agent tokens');
  addConfigOption(token.command('issue').description('issue a token straight from the store (automation, break-glass); prints only the token'))
    .option('--user <email>', 'issue for this user')
    .option('--agent <name>', 'issue for this managed agent of org.yaml')
    .requiredOption('--team <team>', 'team(s) the token acts for (comma-separated for users)')
    .option('--project <project>', 'narrow the token to project(s)')
    .option('--ttl <duration>', 'lifetime, e.g. 30m, 12h, 7d (default 12h)')
    .action(async (opts: { config?: string; user?: string; agent?: string; team: string; project?: string; ttl?: string }) => {
      const config = loadGatewayConfig(configPath(opts));
      await tokenIssue({
        dbFile: databasePath(config), team: opts.team, busyTimeoutMs: config.audit.busyTimeoutMs,
        ...(opts.user === undefined ? {} : { user: opts.user }),
        ...(opts.agent === undefined ? {} : { agent: opts.agent }),
        ...(opts.project === undefined ? {} : { project: opts.project }),
        ...(opts.ttl === undefined ? {} : { ttl: opts.ttl }),
      });
    });
  addConfigOption(token.command('revoke').description('revoke one token by ID, or every token of a user or agent'))
    .argument('[id]', 'token ID (from `tollgate token list`)')
    .option('--user <email>', 'revoke every token of this user')
    .option('--agent <name>', 'revoke every token of this agent')
    .option('--json', 'print JSON')
    .action(async (id: string | undefined, opts: { config?: string; user?: string; agent?: string; json?: boolean }) => {
      const config = loadGatewayConfig(configPath(opts));
      const rows = await tokenRevoke({
        dbFile: databasePath(config), busyTimeoutMs: config.audit.busyTimeoutMs,
        ...(id === undefined ? {} : { id }),
        ...(opts.user === undefined ? {} : { user: opts.user }),
        ...(opts.agent === undefined ? {} : { agent: opts.agent }),
      });
      if (!opts.json) process.stdout.write(`revoked ${rows.length} token(s)\n`);
      rowsOut(rows, opts.json === true);
    });
  addConfigOption(token.command('list').description('list tokens (never their values)'))
    .option('--user <email>', 'only this user')
    .option('--agent <name>', 'only this agent')
    .option('--active', 'only tokens neither expired nor revoked')
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; user?: string; agent?: string; active?: boolean; json?: boolean }) => {
      const config = loadGatewayConfig(configPath(opts));
      const rows = await tokenList({
        dbFile: databasePath(config), activeOnly: opts.active === true,
        ...(opts.user === undefined ? {} : { user: opts.user }),
        ...(opts.agent === undefined ? {} : { agent: opts.agent }),
      });
      rowsOut(rows, opts.json === true);
    });
}
