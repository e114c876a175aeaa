// Test-only: `tollgate serve --config FILE` processes with the sources already loaded, parked until
// the test starts them — so a test can stop one (SIGTERM, kill -9) and have the next one listening
// at once, without paying the seconds it takes to load the sources in between. Each process is
// started like bin/tollgate (tsx registered, then src/cli/main.ts) under `env -i` (tap adds its
// loaders to every spawn's environment); `exec` keeps the pid, so signals reach the gateway itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tokenIssue } from '../../src/identity/token-commands.ts';
import { openDatabase } from '../../src/store/database.ts';
import { until } from './cli-process.ts';

const repo = path.resolve(import.meta.dirname, '../..');

export interface ParkedGateway {
  child: ChildProcess;
  /** Its JSON log lines, as they arrive. */
  logs: Array<Record<string, unknown>>;
  /** `at`: when it exited (ms since the epoch). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Resolves once the sources are loaded (rejects if it exited first). */
  warm: Promise<void>;
}

/** A gateway process for `config`, loaded and parked until startParked(). */
export function loadParkedGateway(config: string): ParkedGateway {
  const boot = [
    "import { register } from 'tsx/esm/api';",
    'register();',
    `const { main } = await import(${JSON.stringify(new URL('../../src/cli/main.ts', import.meta.url).href)});`,
    "process.stdout.write('{\"msg\":\"warm\"}\\n');",
    "await new Promise((r) => process.stdin.once('data', r));",
    'process.stdin.destroy();',
    `process.exitCode = await main([process.execPath, 'tollgate', 'serve', '--config', ${JSON.stringify(config)}]);`,
  ].join('\n');
  const child = spawn('/usr/bin/env', ['-i', `PATH=${process.env['PATH'] ?? '/usr/bin:/bin'}`, `HOME=${os.tmpdir()}`, process.execPath, '--input-type=module', '-e', boot], {
    cwd: repo, stdio: ['pipe', 'pipe', 'inherit'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let buf = '';
  child.stdout!.on('data', (c: Buffer) => {
    buf += c.toString();
    for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try { logs.push(JSON.parse(line) as Record<string, unknown>); } catch { /* not a log line */ }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((r) => child.once('exit', (code, signal) => r({ code, signal, at: Date.now() })));
  const warm = Promise.race([
    until('the gateway process to load', () => logs.some((l) => l['msg'] === 'warm'), 60_000),
    exited.then((e) => { throw new Error(`gateway process exited while loading: ${JSON.stringify(e)}`); }),
  ]);
  warm.catch(() => undefined);
  return { child, logs, exited, warm };
}

/** Starts a parked gateway; resolves with its proxy port. */
export async function startParked(g: ParkedGateway): Promise<number> {
  await g.warm;
  g.child.stdin!.write('go\n');
  let port = 0;
  await Promise.race([
    until('the gateway to listen', () => {
      const l = g.logs.find((x) => x['msg'] === 'tollgate listening');
      port = Number(/:(\d+)$/.exec(String(l?.['proxy'] ?? ''))?.[1] ?? 0);
      return port > 0;
    }, 30_000),
    g.exited.then((e) => { throw new Error(`gateway exited at start: ${JSON.stringify(e)}`); }),
  ]);
  return port;
}

/**
 * Writes a gateway's directory (`files`: relative path → content, tollgate.yaml with
 * `data_dir: ./data` among them), creates its database and issues a token for the agent
 * `alpha-bot` of team `alpha`. Returns the config path, the database path, the token and the
 * `Proxy-Authorization` value for it.
 */
export async function prepareGatewayDir(dir: string, files: Record<string, string>): Promise<{ config: string; dbFile: string; token: string; auth: string }> {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), content);
  }
  const dbFile = path.join(dir, 'data', 'tollgate.db');
  openDatabase(dbFile).close();
  let token = '';
  await tokenIssue({ dbFile, agent: 'alpha-bot', team: 'alpha', ttl: '1h', write: (s) => { token += s.trim(); } });
  return { config: path.join(dir, 'tollgate.yaml'), dbFile, token, auth: `Basic ${Buffer.from(`alpha:${token}`).toString('base64')}` };
}
