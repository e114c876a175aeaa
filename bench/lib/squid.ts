// Owns: the optional reference proxy of bench scenario 12 — Debian's Squid with SSL bumping
// (package squid-openssl), started in the foreground on loopback with a config written here: a CA
// of its own (EC P-256, as Tollgate's leaves), bench.test mapped to 127.0.0.1 by `hosts_file`, the
// bench upstream's CA trusted for server connections, no cache, an access log line per request.
// squidAvailability() says whether (and why not) a Squid with SSL bumping is installed.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { freePort } from './gateway.ts';
import { procCpuMicros } from './proc.ts';

const SQUID = '/usr/sbin/squid';
const CERTGEN = '/usr/lib/squid/security_file_certgen';

export interface BenchSquid {
  pid: number;
  version: string;
  dir: string;
  proxyUrl: string;
  /** The CA Squid signs its generated certificates with (clients trust it). */
  caPem: string;
  /** CPU time (µs) of Squid and its helper processes. */
  cpuMicros(): number;
  stop(): Promise<void>;
}

export type SquidAvailability = { ok: true; version: string } | { ok: false; reason: string };

export function squidAvailability(): SquidAvailability {
  if (!existsSync(SQUID) || !existsSync(CERTGEN)) return { ok: false, reason: 'Squid is not installed (apt-get install squid-openssl)' };
  let v: string;
  try {
    v = execFileSync(SQUID, ['-v'], { encoding: 'utf8', timeout: 10_000 });
  } catch (err) {
    return { ok: false, reason: `${SQUID} -v failed: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (!v.includes('--with-openssl') || !v.includes('--enable-ssl-crtd')) return { ok: false, reason: 'this Squid has no SSL bumping (install squid-openssl, not squid)' };
  return { ok: true, version: /Version (\S+)/.exec(v)?.[1] ?? '?' };
}

/** A self-signed CA (EC P-256) made with the openssl CLI, which squid-openssl depends on. */
function makeCa(dir: string): { certFile: string; keyFile: string } {
  const certFile = path.join(dir, 'squid-ca.pem');
  const keyFile = path.join(dir, 'squid-ca.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-sha256',
    '-keyout', keyFile, '-out', certFile, '-subj', '/CN=Tollgate Bench Squid CA', '-days', '2',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ], { stdio: 'ignore', timeout: 30_000 });
  return { certFile, keyFile };
}

/** Squid drops root for `cache_effective_user` (proxy): the files it reads and writes must be that user's. */
function chownTree(p: string, uid: number, gid: number): void {
  chownSync(p, uid, gid);
  for (const e of readdirSync(p, { withFileTypes: true })) {
    const q = path.join(p, e.name);
    if (e.isDirectory()) chownTree(q, uid, gid);
    else chownSync(q, uid, gid);
  }
}

/** Pids of `root` and its descendants (helpers), from /proc. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(e));
      children.set(ppid, list);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

async function waitListening(port: number, child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`squid exited with ${child.exitCode}: ${existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-1500) : ''}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`squid did not listen on ${port} within ${timeoutMs} ms`);
}

/**
 * Starts Squid in a temp dir of its own (removed by stop(), unless `keep`): Squid drops root for
 * `proxy`, which could not enter the bench's own 0700 temp dir.
 */
export async function startBenchSquid(o: { hosts: string[]; upstreamCaPem: string; keep?: boolean }): Promise<BenchSquid> {
  const avail = squidAvailability();
  if (!avail.ok) throw new Error(avail.reason);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-bench-squid-'));
  const { certFile, keyFile } = makeCa(dir);
  const upstreamCa = path.join(dir, 'upstream-ca.pem');
  writeFileSync(upstreamCa, o.upstreamCaPem);
  const hostsFile = path.join(dir, 'hosts');
  writeFileSync(hostsFile, o.hosts.map((h) => `127.0.0.1 ${h}\n`).join(''));
  const sslDb = path.join(dir, 'ssl_db');
  execFileSync(CERTGEN, ['-c', '-s', sslDb, '-M', '16MB'], { stdio: 'ignore', timeout: 30_000 });
  const port = await freePort();
  const logFile = path.join(dir, 'cache.log');
  const asRoot = process.getuid?.() === 0;
  const conf = [
    `http_port 127.0.0.1:${port} ssl-bump tls-cert=${certFile} tls-key=${keyFile} generate-host-certificates=on dynamic_cert_mem_cache_size=16MB`,
    `sslcrtd_program ${CERTGEN} -s ${sslDb} -M 16MB`,
    'sslcrtd_children 4 startup=1 idle=1',
    'acl step1 at_step SslBump1',
    'ssl_bump peek step1',
    'ssl_bump bump all',
    `tls_outgoing_options cafile=${upstreamCa}`,
    'http_access allow localhost',
    'http_access deny all',
    'cache deny all',
    // Logged as a production Squid logs (Tollgate writes its log line and audit row per exchange).
    `access_log stdio:${path.join(dir, 'access.log')}`,
    `cache_log ${logFile}`,
    `pid_filename ${path.join(dir, 'squid.pid')}`,
    `coredump_dir ${dir}`,
    `hosts_file ${hostsFile}`,
    'dns_nameservers 127.0.0.1',
    'pinger_enable off',
    'shutdown_lifetime 0 seconds',
    ...(asRoot ? ['cache_effective_user proxy'] : []),
    '',
  ].join('\n');
  const confFile = path.join(dir, 'squid.conf');
  writeFileSync(confFile, conf);
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'proxy'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'proxy'], { encoding: 'utf8' }).trim());
    chownTree(dir, uid, gid);
  }
  // -N: foreground, one process doing all the work (as a one-worker Squid's kid does).
  const child = spawn(SQUID, ['-N', '-f', confFile], { stdio: 'ignore' });
  try {
    await waitListening(port, child, logFile, 15_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const pid = child.pid as number;
  return {
    pid,
    version: avail.version,
    dir,
    proxyUrl: `http://127.0.0.1:${port}`,
    caPem: readFileSync(certFile, 'utf8'),
    cpuMicros: () => processTree(pid).reduce((n, p) => {
      try {
        return n + procCpuMicros(p);
      } catch {
        return n;
      }
    }, 0),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      if (!o.keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}
