// Owns: the kubeconfig `tollgate setup kubectl --project P` writes — one cluster and context per
// `kind: kubernetes` connection of the project that names its API `server:`, each reaching the API
// server through the gateway (`proxy-url` with the user's scope and token), trusting only
// Tollgate's CA (the gateway intercepts and re-verifies the real API server against the
// connection's own CA), and holding no Kubernetes credential: the user entry carries only the
// placeholder token (kubectl prompts for a user name when an https cluster's user has nothing that
// identifies it), which the gateway removes before injecting the bound token, and refuses on a
// host with no binding — and merging those entries into an existing kubeconfig, keeping every
// other entry. PURE: the caller reads and writes the file.
import { PLACEHOLDER_KEY } from './claude-settings.ts';

export interface KubeConnection {
  readonly name: string;
  readonly kind?: string | undefined;
  readonly server?: string | undefined;
}

export interface KubeconfigInput {
  readonly project: string;
  readonly connections: readonly KubeConnection[];
  /** `http://<team>.<project>:<token>@host:port` — what `tollgate env` would put in HTTPS_PROXY. */
  readonly proxyUrl: string;
  /** Tollgate's CA certificate (PEM). */
  readonly caPem: string;
}

export interface NamedEntry {
  name: string;
  [key: string]: unknown;
}

export interface KubeEntries {
  clusters: NamedEntry[];
  contexts: NamedEntry[];
  users: NamedEntry[];
  /** Kubernetes connections left out, and why. */
  skipped: Array<{ connection: string; reason: string }>;
}

/** The user entry every Tollgate context names: it carries no credential, only the placeholder. */
export const KUBE_USER = 'tollgate';

export function kubeContextName(project: string, connection: string): string {
  return `tollgate-${project}-${connection}`;
}

/** The clusters, contexts and (empty) user for a project's kubernetes connections. */
export function kubeconfigEntries(input: KubeconfigInput): KubeEntries {
  const out: KubeEntries = { clusters: [], contexts: [], users: [], skipped: [] };
  const caData = Buffer.from(input.caPem, 'utf8').toString('base64');
  for (const c of input.connections) {
    if (c.kind !== 'kubernetes') continue;
    if (c.server === undefined || c.server === '') {
      out.skipped.push({ connection: c.name, reason: 'it names no server: (add the API server URL to the connection in org.yaml)' });
      continue;
    }
    const name = kubeContextName(input.project, c.name);
    out.clusters.push({ name, cluster: { server: c.server, 'certificate-authority-data': caData, 'proxy-url': input.proxyUrl } });
    out.contexts.push({ name, context: { cluster: name, user: KUBE_USER } });
  }
  if (out.clusters.length > 0) out.users.push({ name: KUBE_USER, user: { token: PLACEHOLDER_KEY } });
  return out;
}

export class KubeconfigShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeconfigShapeError';
  }
}

function namedList(config: Record<string, unknown>, key: string): NamedEntry[] {
  const v = config[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new KubeconfigShapeError(`"${key}" is not a list`);
  return v.map((e, i) => {
    if (e === null || typeof e !== 'object' || Array.isArray(e) || typeof (e as { name?: unknown }).name !== 'string') {
      throw new KubeconfigShapeError(`${key}[${i}] is not an entry with a name`);
    }
    return e as NamedEntry;
  });
}

function replaceByName(list: NamedEntry[], add: readonly NamedEntry[]): NamedEntry[] {
  const names = new Set(add.map((e) => e.name));
  return [...list.filter((e) => !names.has(e.name)), ...add];
}

export interface MergedKubeconfig {
  config: Record<string, unknown>;
  /** Plain words, one per change; the token never appears. */
  changes: string[];
}

/**
 * Merges `entries` into `existing` (a parsed kubeconfig, or undefined when there is none):
 * entries of the same name are replaced, every other cluster, context, user and setting is kept,
 * and the current context becomes the first of ours.
 */
export function mergeKubeconfig(existing: unknown, entries: KubeEntries): MergedKubeconfig {
  if (existing !== undefined && existing !== null && (typeof existing !== 'object' || Array.isArray(existing))) {
    throw new KubeconfigShapeError('the file is not a YAML mapping');
  }
  const base = (existing ?? {}) as Record<string, unknown>;
  if (base['kind'] !== undefined && base['kind'] !== 'Config') throw new KubeconfigShapeError(`its kind is ${JSON.stringify(base['kind'])}, not Config`);
  const clusters = namedList(base, 'clusters');
  const contexts = namedList(base, 'contexts');
  const users = namedList(base, 'users');
  const changes: string[] = [];
  const had = new Set(clusters.map((c) => c.name));
  for (const c of entries.clusters) {
    const server = (c['cluster'] as { server: string }).server;
    changes.push(`${had.has(c.name) ? 'replaced' : 'added'} cluster and context ${c.name} (${server})`);
  }
  const current = entries.contexts[0]?.name;
  const config: Record<string, unknown> = {
    apiVersion: 'v1',
    kind: 'Config',
    ...base,
    clusters: replaceByName(clusters, entries.clusters),
    contexts: replaceByName(contexts, entries.contexts),
    users: replaceByName(users, entries.users),
  };
  if (current !== undefined && base['current-context'] !== current) {
    config['current-context'] = current;
    changes.push(`current-context = ${current}`);
  }
  return { config, changes };
}
