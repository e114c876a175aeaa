// Owns: where `tollgate login` keeps the signed-in user's gateway token —
// `$XDG_CONFIG_HOME/tollgate/credentials.json` (default ~/.config/tollgate), file mode 0600 in a
// 0700 folder, written atomically (temp file + rename). `TOLLGATE_TOKEN` overrides the stored
// token (CI, containers); `TOLLGATE_GATEWAY` and `TOLLGATE_PROXY` fill in the addresses when no
// file exists. Verbs acting as the user (env, run, setup) call readLogin().
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { writeFileAtomic } from '../store/write-file-atomic.ts';
import os from 'node:os';
import path from 'node:path';
import { TollgateError } from '../errors.ts';

export interface LoginRecord {
  /** The admin listener signed in to, e.g. http://127.0.0.1:9090 */
  gateway: string;
  /** The proxy to use, e.g. http://127.0.0.1:3128 (no credentials in it). */
  proxy: string;
  /** The gateway token (secret). */
  token: string;
  /** Teams the token may act for. */
  teams: string[];
  /** ISO 8601; '' when unknown (TOLLGATE_TOKEN without a stored login). */
  expiresAt: string;
  /** The signed-in e-mail, when known. */
  user?: string;
}

type Env = NodeJS.ProcessEnv;

export function loginStoreDir(env: Env = process.env): string {
  const base = env['XDG_CONFIG_HOME'] && path.isAbsolute(env['XDG_CONFIG_HOME']) ? env['XDG_CONFIG_HOME'] : path.join(os.homedir(), '.config');
  return path.join(base, 'tollgate');
}

export function loginStorePath(env: Env = process.env): string {
  return path.join(loginStoreDir(env), 'credentials.json');
}

function readFile(env: Env): LoginRecord | undefined {
  const file = loginStorePath(env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TollgateError('TOLLGATE_ERR_USAGE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new TollgateError('TOLLGATE_ERR_USAGE', `${file} is not valid JSON; run \`tollgate login\` again`);
  }
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : '');
  if (str('token') === '') throw new TollgateError('TOLLGATE_ERR_USAGE', `${file} holds no token; run \`tollgate login\` again`);
  return {
    gateway: str('gateway'), proxy: str('proxy'), token: str('token'), expiresAt: str('expires_at'),
    teams: Array.isArray(v['teams']) ? v['teams'].filter((t): t is string => typeof t === 'string') : [],
    ...(str('user') ? { user: str('user') } : {}),
  };
}

/** The login to act as, or undefined when there is none. TOLLGATE_TOKEN replaces the stored token. */
export function readLogin(env: Env = process.env): LoginRecord | undefined {
  const stored = readFile(env);
  const override = env['TOLLGATE_TOKEN'];
  if (override === undefined || override === '') return stored;
  return {
    gateway: env['TOLLGATE_GATEWAY'] ?? stored?.gateway ?? '',
    proxy: env['TOLLGATE_PROXY'] ?? stored?.proxy ?? '',
    token: override,
    teams: stored?.token === override ? stored.teams : [],
    expiresAt: stored?.token === override ? stored.expiresAt : '',
  };
}

export function writeLogin(login: LoginRecord, env: Env = process.env): string {
  const dir = loginStoreDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
  } catch {
    // not ours to change: the file itself is still 0600
  }
  const file = loginStorePath(env);
  const body = { gateway: login.gateway, proxy: login.proxy, token: login.token, teams: login.teams, expires_at: login.expiresAt, ...(login.user ? { user: login.user } : {}) };
  writeFileAtomic(file, JSON.stringify(body, null, 2) + '\n', 0o600);
  return file;
}

/** Stores the gateway's interception CA next to the login (`ca.pem`, read by env/run/setup). */
export function writeLoginCa(pem: string, env: Env = process.env): string {
  if (!/^-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\s*$/.test(pem)) throw new TollgateError('TOLLGATE_ERR_REQUEST', 'the gateway sent an invalid CA certificate');
  const dir = loginStoreDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'ca.pem');
  // Every tool the user points at the gateway trusts this CA: written atomically and never through
  // a planted link, though it is public (0644).
  writeFileAtomic(file, pem, 0o644);
  return file;
}

/** Removes the stored login; true when there was one. */
export function clearLogin(env: Env = process.env): boolean {
  const file = loginStorePath(env);
  try {
    statSync(file);
  } catch {
    return false;
  }
  rmSync(file, { force: true });
  return true;
}
