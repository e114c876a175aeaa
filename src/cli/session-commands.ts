// Owns: `tollgate sessions list|end` — argument parsing and printing around
// src/identity/admin-session-commands.ts.
import { Command } from 'commander';
import { databasePath, loadGatewayConfig } from '../config/gateway-config.ts';
import { sessionsEnd, sessionsList } from '../identity/admin-session-commands.ts';
import { addConfigOption, configPath } from './config-option.ts';
import { printTable } from './print-table.ts';

export function registerSessionCommands(program: Command): void {
  const sessions = program.command('sessions').description('list and end admin dashboard sessions (sign-ins at the admin port)');
  addConfigOption(sessions.command('list').description('list live admin sessions, newest first (never their ids)'))
    .option('--email <email>', 'only this user')
    .option('--json', 'print JSON')
    .action((opts: { config?: string; email?: string; json?: boolean }) => {
      const config = loadGatewayConfig(configPath(opts));
      const rows = sessionsList({
        dbFile: databasePath(config), busyTimeoutMs: config.audit.busyTimeoutMs, ttlMs: config.sso.sessionTtlMs,
        ...(opts.email === undefined ? {} : { email: opts.email }),
      });
      if (opts.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      printTable(rows.map((r) => ({ email: r.email, issuer: r.issuer, groups: r.groups.join(','), signed_in: r.createdAt, expires: r.expiresAt })));
    });
  addConfigOption(sessions.command('end').description('sign admins out: every session of one user, or all sessions (a running gateway refuses them at once)'))
    .option('--email <email>', 'end every session of this user')
    .option('--all', 'end every session')
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; email?: string; all?: boolean; json?: boolean }) => {
      const config = loadGatewayConfig(configPath(opts));
      const emails = await sessionsEnd({
        dbFile: databasePath(config), busyTimeoutMs: config.audit.busyTimeoutMs,
        ...(opts.email === undefined ? {} : { email: opts.email }), ...(opts.all === true ? { all: true } : {}),
      });
      if (opts.json) process.stdout.write(JSON.stringify({ ended: emails.length, emails }, null, 2) + '\n');
      else process.stdout.write(`ended ${emails.length} admin session(s)${emails.length > 0 ? `: ${[...new Set(emails)].join(', ')}` : ''}\n`);
    });
}
