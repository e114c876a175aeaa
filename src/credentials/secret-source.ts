// Owns: resolving a secret by name from the environment (`<env_prefix><NAME_UPPER_SNAKE>`) or a
// file (`<dir>/<name>`, trimmed). Env wins over file. An interface with an in-memory twin for
// tests. Shell: reads process.env and the file system.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export interface SecretSource {
  /** The value, or undefined when the secret is not configured. */
  get(name: string): string | undefined;
  has(name: string): boolean;
  /** Every known value (for redaction). */
  knownValues(names: readonly string[]): string[];
}

const SECRET_NAME = /^[a-z0-9][a-z0-9._-]*$/;

export function isValidSecretName(name: string): boolean {
  return SECRET_NAME.test(name) && !name.includes('..');
}

/** `github-token` → `TOLLGATE_SECRET_GITHUB_TOKEN`. */
export function envVarForSecret(prefix: string, name: string): string {
  return `${prefix}${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

export interface SecretSourceOptions {
  readonly envPrefix?: string | undefined;
  readonly dir?: string | undefined;
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
}

export function createSecretSource(opts: SecretSourceOptions = {}): SecretSource {
  const prefix = opts.envPrefix ?? 'TOLLGATE_SECRET_';
  const env = opts.env ?? process.env;
  const dir = opts.dir === undefined ? undefined : path.resolve(opts.dir);
  const fileCache = new Map<string, { mtimeMs: number; value: string | undefined }>();
  const fromFile = (name: string): string | undefined => {
    if (!dir) return undefined;
    const file = path.join(dir, name);
    try {
      const st = statSync(file);
      if (!st.isFile()) return undefined;
      const cached = fileCache.get(name);
      if (cached && cached.mtimeMs === st.mtimeMs) return cached.value;
      const value = readFileSync(file, 'utf8').trim();
      fileCache.set(name, { mtimeMs: st.mtimeMs, value: value === '' ? undefined : value });
      return value === '' ? undefined : value;
    } catch {
      return undefined;
    }
  };
  const get = (name: string): string | undefined => {
    if (!isValidSecretName(name)) return undefined;
    const v = env[envVarForSecret(prefix, name)];
    if (v !== undefined && v.trim() !== '') return v.trim();
    return fromFile(name);
  };
  return {
    get,
    has: (name) => get(name) !== undefined,
    knownValues: (names) => names.map(get).filter((v): v is string => v !== undefined),
  };
}

/** In-memory twin for tests. */
export function createMemorySecretSource(values: Readonly<Record<string, string>>): SecretSource {
  const map = new Map(Object.entries(values));
  return {
    get: (name) => map.get(name),
    has: (name) => map.has(name),
    knownValues: (names) => names.map((n) => map.get(n)).filter((v): v is string => v !== undefined),
  };
}
