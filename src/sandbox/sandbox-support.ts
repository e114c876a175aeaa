// Owns: whether this machine can run the namespace sandbox — the executables it needs and the
// kernel's user-namespace switches — with an error that says why not and what to do instead.
import { accessSync, constants, readFileSync } from 'node:fs';
import path from 'node:path';
import { TollgateError } from '../errors.ts';
import type { SandboxTools } from './plan-sandbox.ts';

export type SandboxSupport =
  | { ok: true; tools: SandboxTools }
  | { ok: false; reason: string; hint: string };

const EXTRA_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

function which(name: string, envPath: string | undefined): string | undefined {
  for (const dir of [...(envPath ?? '').split(':').filter(Boolean), ...EXTRA_DIRS]) {
    const p = path.join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

function readSysctl(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

const FALLBACK = 'run as root, enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0), or use --no-sandbox (advisory only: nothing is enforced)';

/** Checks the platform, the tools and the kernel switches. Does not start anything. */
export function checkSandboxSupport(opts: { env?: NodeJS.ProcessEnv; platform?: NodeJS.Platform; uid?: number; nodePath?: string } = {}): SandboxSupport {
  const platform = opts.platform ?? process.platform;
  if (platform !== 'linux') {
    return { ok: false, reason: `the network sandbox needs Linux namespaces; this is ${platform}`, hint: 'run tollgate run on Linux (or in a Linux VM/container), or use --no-sandbox (advisory only: nothing is enforced)' };
  }
  const envPath = (opts.env ?? process.env)['PATH'];
  const found: Partial<Record<keyof SandboxTools, string>> = {};
  const missing: string[] = [];
  for (const [key, name, pkg] of [['unshare', 'unshare', 'util-linux'], ['nsenter', 'nsenter', 'util-linux'], ['ip', 'ip', 'iproute2'], ['sh', 'sh', 'dash']] as const) {
    const p = which(name, envPath);
    if (p === undefined) missing.push(`${name} (${pkg})`);
    else found[key] = p;
  }
  if (missing.length > 0) {
    return { ok: false, reason: `the network sandbox needs ${missing.join(', ')}, not found on PATH`, hint: `install them (apt-get install util-linux iproute2), or use --no-sandbox (advisory only)` };
  }
  const uid = opts.uid ?? (process.getuid?.() ?? -1);
  const maxUserNs = readSysctl('/proc/sys/user/max_user_namespaces');
  if (maxUserNs === '0') {
    return { ok: false, reason: 'user namespaces are disabled on this machine (user.max_user_namespaces = 0)', hint: FALLBACK };
  }
  if (uid !== 0) {
    if (readSysctl('/proc/sys/kernel/unprivileged_userns_clone') === '0') {
      return { ok: false, reason: 'unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0) and this is not root', hint: FALLBACK };
    }
  }
  return { ok: true, tools: { unshare: found.unshare!, nsenter: found.nsenter!, ip: found.ip!, sh: found.sh!, node: opts.nodePath ?? process.execPath } };
}

/** The tools, or TOLLGATE_ERR_SANDBOX with the reason and the way out. */
export function requireSandboxSupport(opts: Parameters<typeof checkSandboxSupport>[0] = {}): SandboxTools {
  const s = checkSandboxSupport(opts);
  if (!s.ok) throw new TollgateError('TOLLGATE_ERR_SANDBOX', `the sandbox is unavailable: ${s.reason}.\n  What to do: ${s.hint}`);
  return s.tools;
}
