// Owns: carrying out a SandboxPlan — start the holder inside new namespaces, take over its
// loopback listener, bridge every connection on it to the gateway, and start the command inside
// the same namespaces. Cleans up (listener, bridged sockets, descriptors) when the command exits.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import { TollgateError } from '../errors.ts';
import type { Endpoint, SandboxPlan } from './plan-sandbox.ts';

export interface SandboxExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SandboxProcess {
  readonly pid: number;
  /** The command's process (its stdout/stderr are streams when piped). */
  readonly child: ChildProcess;
  readonly exited: Promise<SandboxExit>;
  kill(signal?: NodeJS.Signals): boolean;
  /** Connections bridged to the gateway so far. */
  bridgedConnections(): number;
}

export interface LaunchOptions {
  /** stdio of the command: three entries (default inherit). */
  stdio?: readonly ['inherit' | 'pipe' | 'ignore' | number, 'inherit' | 'pipe' | 'ignore' | number, 'inherit' | 'pipe' | 'ignore' | number];
  /** How long the holder may take to report its listener. Default 15 s. */
  startTimeoutMs?: number;
  /** Working directory of the command. */
  cwd?: string;
  /** Called when one bridged connection fails (the gateway is down …). */
  onBridgeError?: (err: Error) => void;
}

interface Holder {
  server: net.Server;
  userFd: number;
  netFd: number;
}

function startHolder(plan: SandboxPlan, timeoutMs: number): Promise<Holder> {
  const argv = plan.holder!.argv;
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    let stderr = '';
    let settled = false;
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < 4096) stderr += d; });
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      const detail = stderr.trim();
      const hint = /Operation not permitted|Permission denied|EPERM/.test(detail)
        ? '\n  What to do: the kernel refused new user/network namespaces (not root, or unprivileged user namespaces restricted — on Ubuntu 24.04 by AppArmor: kernel.apparmor_restrict_unprivileged_userns). Run as root, allow user namespaces, or use --no-sandbox (advisory only).'
        : '';
      reject(new TollgateError('TOLLGATE_ERR_SANDBOX', `cannot create the sandbox: ${why}${detail ? `: ${detail}` : ''}${hint}`));
    };
    const timer = setTimeout(() => fail(`the namespace holder did not start within ${timeoutMs} ms`), timeoutMs);
    child.on('error', (err) => fail(`cannot start ${argv[0]}: ${err.message}`));
    child.on('exit', (code, signal) => fail(`the namespace holder exited (${signal ?? `code ${code}`})`));
    child.on('message', (msg: unknown, handle: unknown) => {
      if (settled) return;
      const m = msg as { type?: string; pid?: number } | null;
      if (m?.type !== 'ready' || !(handle instanceof net.Server) || child.pid === undefined) return fail('the namespace holder sent an unexpected message');
      let userFd = -1;
      let netFd = -1;
      try {
        // unshare exec()s the holder, so child.pid is the holder and its namespaces are the sandbox's.
        userFd = openSync(`/proc/${child.pid}/ns/user`, 'r');
        netFd = openSync(`/proc/${child.pid}/ns/net`, 'r');
      } catch (err) {
        for (const fd of [userFd, netFd]) if (fd >= 0) closeSync(fd);
        handle.close();
        return fail(`cannot open the namespaces of the holder: ${(err as Error).message}`);
      }
      settled = true;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.on('exit', () => undefined);
      child.send({ type: 'exit' }, () => child.disconnect());
      resolve({ server: handle, userFd, netFd });
    });
  });
}

function bridge(server: net.Server, target: Endpoint, sockets: Set<net.Socket>, onError: (err: Error) => void, count: () => void): void {
  server.on('connection', (inner: net.Socket) => {
    count();
    const outer = net.connect({ host: target.host, port: target.port });
    sockets.add(inner);
    sockets.add(outer);
    const done = (err?: Error) => {
      if (err) onError(err);
      inner.destroy();
      outer.destroy();
      sockets.delete(inner);
      sockets.delete(outer);
    };
    inner.on('error', done);
    outer.on('error', done);
    inner.on('close', () => done());
    outer.on('close', () => done());
    inner.pipe(outer);
    outer.pipe(inner);
  });
  server.on('error', onError);
}

/** Starts the planned command (in the sandbox when plan.mode is `namespace`). */
export async function launchSandbox(plan: SandboxPlan, opts: LaunchOptions = {}): Promise<SandboxProcess> {
  const stdio = opts.stdio ?? ['inherit', 'inherit', 'inherit'];
  const onBridgeError = opts.onBridgeError ?? (() => undefined);
  let holder: Holder | undefined;
  if (plan.mode === 'namespace') holder = await startHolder(plan, opts.startTimeoutMs ?? 15_000);
  const sockets = new Set<net.Socket>();
  let bridged = 0;
  if (holder) bridge(holder.server, plan.bridge!.target, sockets, onBridgeError, () => { bridged++; });

  const fullStdio: StdioOptions = holder ? [...stdio, holder.userFd, holder.netFd] : [...stdio];
  const child = spawn(plan.argv[0]!, plan.argv.slice(1), { stdio: fullStdio, env: plan.env, ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }) });
  const closeFds = () => {
    if (!holder) return;
    for (const fd of [holder.userFd, holder.netFd]) {
      try { closeSync(fd); } catch { /* already closed */ }
    }
    holder.userFd = holder.netFd = -1;
  };
  const cleanup = () => {
    closeFds();
    holder?.server.close();
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  const exited = new Promise<SandboxExit>((resolve, reject) => {
    child.on('spawn', closeFds);
    child.on('error', (err) => {
      cleanup();
      reject(new TollgateError('TOLLGATE_ERR_SANDBOX', `cannot start ${plan.argv[0]}: ${err.message}`));
    });
    child.on('exit', (code, signal) => {
      cleanup();
      resolve({ code, signal });
    });
  });
  // Surface a spawn failure (ENOENT …) to the caller rather than as a process without a pid.
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    exited.catch(reject);
  });
  return {
    pid: child.pid!,
    child,
    exited,
    kill: (signal = 'SIGTERM') => child.kill(signal),
    bridgedConnections: () => bridged,
  };
}
