// Owns: `tollgate identities list|unbind` — argument parsing and printing around
// src/identity/identity-commands.ts.
import { Command } from 'commander';
import { databasePath, loadGatewayConfig } from '../config/gateway-config.ts';
import { identitiesList, identitiesUnbind } from '../identity/identity-commands.ts';
import { addConfigOption, configPath } from './config-option.ts';
import { printTable } from './print-table.ts';

export function registerIdentityCommands(program: Command): void {
  const identities = program.command('identities').description('which identity provider account (iss, sub) holds each e-mail address, and releasing one');
  addConfigOption(identities.command('list').description('list the accounts that have signed in and the address each one holds'))
    .option('--email <email>', 'only this address')
    .option('--json', 'print JSON')
    .action((opts: { config?: string; email?: string; json?: boolean }) => {
      const config = loadGatewayConfig(configPath(opts));
      const rows = identitiesList({ dbFile: databasePath(config), busyTimeoutMs: config.audit.busyTimeoutMs, ...(opts.email === undefined ? {} : { email: opts.email }) });
      if (opts.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      printTable(rows.map((r) => ({ email: r.email, issuer: r.issuer, subject: r.subject, first_seen: r.firstSeen, last_seen: r.lastSeen })));
    });
  addConfigOption(identities.command('unbind').description('release an address: the next account that signs in with it takes it (audited as identity_unbound)'))
    .requiredOption('--email <email>', 'the address to release')
    .option('--json', 'print JSON')
    .action((opts: { config?: string; email: string; json?: boolean }) => {
      const config = loadGatewayConfig(configPath(opts));
      const removed = identitiesUnbind({ dbFile: databasePath(config), email: opts.email, busyTimeoutMs: config.audit.busyTimeoutMs });
      if (opts.json) process.stdout.write(JSON.stringify({ released: removed ?? null }, null, 2) + '\n');
      else process.stdout.write(removed ? `released ${removed.email} (held by ${removed.subject} of ${removed.issuer})\n` : `no account holds ${opts.email.toLowerCase()}\n`);
    });
}
