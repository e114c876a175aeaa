// Owns: `tollgate login <gateway-url> [--device] [--issuer NAME] [--no-browser] [--port N]` and
// `tollgate logout` — argument parsing and printing around identity/gateway-login.ts.
// Messages go to stderr; stdout gets only the HTTPS_PROXY line, so `eval` and scripts stay clean.
import { Command, InvalidArgumentError } from 'commander';
import { loginToGateway, logoutFromGateway } from '../identity/gateway-login.ts';
import { openBrowser } from './open-browser.ts';

function proxyLine(proxy: string, team: string | undefined, token: string): string {
  if (!proxy) return '';
  const u = new URL(proxy);
  return `${u.protocol}//${team === undefined ? '' : encodeURIComponent(team)}:${token}@${u.host}`;
}

export function registerLoginCommands(program: Command): void {
  program.command('login')
    .description('sign in through the organisation\'s identity provider and store a gateway token')
    .argument('<gateway-url>', 'the gateway\'s admin address, e.g. https://tollgate.example.com:9090')
    .option('--device', 'device authorization grant: sign in on another device (no browser here)')
    .option('--issuer <name>', 'identity provider to use when the gateway trusts several')
    .option('--no-browser', 'do not open a browser; print the sign-in URL')
    .option('--port <port>', 'loopback port for the browser redirect (default: a free one)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port number');
      return n;
    })
    .action(async (gatewayUrl: string, opts: { device?: boolean; issuer?: string; browser: boolean; port?: number }) => {
      const print = (line: string) => process.stderr.write(`${line}\n`);
      const { login, file, admin } = await loginToGateway({
        gatewayUrl, device: opts.device === true, print,
        openUrl: opts.browser ? (url) => openBrowser(url) : async () => false,
        ...(opts.issuer === undefined ? {} : { issuer: opts.issuer }),
        ...(opts.port === undefined ? {} : { port: opts.port }),
      });
      print(`Signed in as ${login.user ?? '?'}${admin ? ' (admin)' : ''}; teams: ${login.teams.join(', ')}; the token expires ${login.expiresAt}.`);
      print(`Saved to ${file}.`);
      const team = login.teams.length === 1 ? undefined : login.teams[0];
      if (login.proxy) {
        if (login.teams.length > 1) print(`Your token acts for several teams; the line below uses ${team ?? ''} (put another team before the colon to switch).`);
        print('Send traffic through the gateway with:');
        process.stdout.write(`export HTTPS_PROXY=${proxyLine(login.proxy, team, login.token)}\n`);
      }
    });
  program.command('logout')
    .description('revoke the stored gateway token and forget it')
    .action(async () => {
      const r = await logoutFromGateway();
      process.stderr.write(!r.hadLogin ? 'Not signed in.\n' : r.revoked ? 'Signed out; the token is revoked.\n' : 'Signed out locally; the gateway could not be reached to revoke the token (it expires on its own).\n');
    });
}
