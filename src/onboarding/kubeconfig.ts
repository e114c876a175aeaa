// Owns: the kubeconfig `tollgate setup kubectl --project P` writes — one cluster and context per
// `kind: kubernetes` connection of the project that names its API `server:`, each reaching the API
// server through the gateway (`proxy-url` with the user's scope and token), trusting only
// Tollgate's CA (the gateway intercepts and re-verifies the real API server against the
// connection's own CA), and holding no Kubernetes credential: the user entry carries only the
// placeholder token (kubectl prompts for a user name when an https cluster's user has nothing that
// identifies it), which the gateway removes before injecting the bound token, and refuses on a
// host with no binding — and merging those entries into an existing kubeconfig as a YAML 1.1
// document tree (kubectl's YAML), keeping every other entry, comment and quoting, and giving every
// other tollgate-* cluster of the same gateway the new token; and the copy `--print` shows, with
// every secret redacted. PURE: the caller reads and writes the file.
import { Document, isMap, isScalar, isSeq, parseDocument, Scalar, visit, YAMLMap, YAMLSeq } from 'yaml';
import { PLACEHOLDER_KEY, redactProxyUrl } from './claude-settings.ts';

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

/**
 * kubectl reads a kubeconfig as YAML 1.1 (go-yaml v2), where unquoted yes, no, on, off, y and n
 * are booleans: the file is parsed and written with the 1.1 schema, so a string such as
 * `namespace: "yes"` keeps its quotes (a 1.2 writer drops them and kubectl then fails with
 * `cannot unmarshal bool into … string`).
 */
export const KUBECONFIG_YAML = { version: '1.1' } as const;
/** How the edited document is written: no folding of the long CA data, lists as kubectl writes them. */
export const KUBECONFIG_STRINGIFY = { lineWidth: 0, indentSeq: false } as const;

/** A kubeconfig text as a document tree whose edits keep every other scalar, style and comment. */
export function parseKubeconfig(text: string): Document {
  return parseDocument(text, KUBECONFIG_YAML);
}

function namedList(doc: Document, root: YAMLMap, key: string): YAMLSeq {
  const v = root.get(key, true);
  if (v === undefined || (isScalar(v) && v.value === null)) {
    const seq = new YAMLSeq(doc.schema);
    root.set(key, seq);
    return seq;
  }
  if (!isSeq(v)) throw new KubeconfigShapeError(`"${key}" is not a list`);
  v.items.forEach((e, i) => {
    if (!isMap(e) || typeof e.get('name') !== 'string') throw new KubeconfigShapeError(`${key}[${i}] is not an entry with a name`);
  });
  return v;
}

const nameOf = (node: unknown): unknown => (isMap(node) ? node.get('name') : undefined);

/** Puts each entry in place of the first of the same name (keeping its comments), or at the end. */
function replaceByName(doc: Document, seq: YAMLSeq, add: readonly NamedEntry[]): void {
  for (const entry of add) {
    const node = doc.createNode(entry);
    const at = seq.items.findIndex((e) => nameOf(e) === entry.name);
    if (at < 0) {
      seq.items.push(node);
      continue;
    }
    const old = seq.items[at];
    if (isMap(old)) {
      node.commentBefore = old.commentBefore;
      node.comment = old.comment;
    }
    seq.items[at] = node;
    seq.items = seq.items.filter((e, i) => i <= at || nameOf(e) !== entry.name);
  }
}

/**
 * `old` (a proxy-url) with the token of `fresh` when both name the same proxy (scheme, host and
 * port), keeping the old user name (its team and project); undefined when it names another proxy.
 */
export function refreshProxyUrl(old: string, fresh: string): string | undefined {
  let o: URL;
  let f: URL;
  try {
    o = new URL(old);
    f = new URL(fresh);
  } catch {
    return undefined;
  }
  if (o.protocol !== f.protocol || o.host !== f.host) return undefined;
  // proxyUrlFor: `scope:token@`, or `token:@` without a scope.
  const token = f.password !== '' ? f.password : f.username;
  const auth = o.password !== '' ? `${o.username}:${token}` : `${token}:`;
  return `${f.protocol}//${auth}@${f.host}`;
}

/**
 * Merges `entries` into the kubeconfig document `doc` (edited in place; an empty document becomes
 * a new kubeconfig): entries of the same name are replaced, every other cluster, context, user,
 * setting and comment is kept, the current context becomes the first of ours, and every other
 * `tollgate-*` cluster whose proxy-url names the same proxy gets the new token — so no old gateway
 * token stays in the file. Returns the changes in plain words (never a token).
 */
export function mergeKubeconfigDocument(doc: Document, entries: KubeEntries): string[] {
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    doc.contents = doc.createNode({ apiVersion: 'v1', kind: 'Config' });
  }
  const root = doc.contents;
  if (!isMap(root)) throw new KubeconfigShapeError('the file is not a YAML mapping');
  const kind = root.get('kind');
  if (kind !== undefined && kind !== 'Config') throw new KubeconfigShapeError(`its kind is ${JSON.stringify(kind)}, not Config`);
  if (!root.has('kind')) root.items.unshift(doc.createPair('kind', 'Config'));
  if (!root.has('apiVersion')) root.items.unshift(doc.createPair('apiVersion', 'v1'));
  const clusters = namedList(doc, root, 'clusters');
  const contexts = namedList(doc, root, 'contexts');
  const users = namedList(doc, root, 'users');
  const changes: string[] = [];
  const had = new Set(clusters.items.map(nameOf));
  for (const c of entries.clusters) {
    const server = (c['cluster'] as { server: string }).server;
    changes.push(`${had.has(c.name) ? 'replaced' : 'added'} cluster and context ${c.name} (${server})`);
  }
  const ours = new Set(entries.clusters.map((c) => c.name));
  const fresh = (entries.clusters[0]?.['cluster'] as { 'proxy-url'?: string } | undefined)?.['proxy-url'];
  if (fresh !== undefined) {
    for (const item of clusters.items) {
      const name = nameOf(item);
      if (typeof name !== 'string' || !name.startsWith('tollgate-') || ours.has(name)) continue;
      const cluster = (item as YAMLMap).get('cluster', true);
      if (!isMap(cluster)) continue;
      const old = cluster.get('proxy-url');
      if (typeof old !== 'string') continue;
      const next = refreshProxyUrl(old, fresh);
      if (next === undefined) changes.push(`kept cluster ${name}: its proxy-url names another gateway, so its token was not refreshed`);
      else if (next !== old) {
        cluster.set('proxy-url', next);
        changes.push(`refreshed the gateway token in cluster ${name}`);
      }
    }
  }
  replaceByName(doc, clusters, entries.clusters);
  replaceByName(doc, contexts, entries.contexts);
  replaceByName(doc, users, entries.users);
  const current = entries.contexts[0]?.name;
  if (current !== undefined && root.get('current-context') !== current) {
    root.set('current-context', current);
    changes.push(`current-context = ${current}`);
  }
  return changes;
}

const REDACTED = 'REDACTED';

/** The fields of a kubeconfig user that hold no secret; every other value of a user is replaced. */
const USER_KEEP = new Set(['username', 'client-certificate', 'client-key', 'tokenFile', 'as', 'as-uid', 'as-groups', 'extensions']);
const EXEC_KEEP = new Set(['apiVersion', 'command', 'installHint', 'provideClusterInfo', 'interactiveMode']);

function redactAll(node: unknown): unknown {
  if (isMap(node)) {
    for (const p of node.items) p.value = redactAll(p.value) as typeof p.value;
    return node;
  }
  if (isSeq(node)) {
    node.items = node.items.map(redactAll);
    return node;
  }
  return new Scalar(REDACTED);
}

function redactUser(user: YAMLMap): void {
  for (const p of user.items) {
    const key = isScalar(p.key) ? p.key.value : p.key;
    const value = p.value;
    if (typeof key === 'string' && USER_KEEP.has(key)) continue;
    if (key === 'token' && isScalar(value) && value.value === PLACEHOLDER_KEY) continue;
    if (key === 'client-certificate-data') p.value = new Scalar('DATA+OMITTED');
    else if (key === 'exec' && isMap(value)) {
      for (const e of value.items) {
        const k = isScalar(e.key) ? e.key.value : e.key;
        if (typeof k === 'string' && EXEC_KEEP.has(k)) continue;
        if (k === 'env' && isSeq(e.value)) {
          for (const v of e.value.items) if (isMap(v) && v.has('value')) v.set('value', REDACTED);
        } else e.value = redactAll(e.value) as typeof e.value;
      }
    } else if (key === 'auth-provider' && isMap(value)) {
      for (const a of value.items) if (!(isScalar(a.key) && a.key.value === 'name')) a.value = redactAll(a.value) as typeof a.value;
    } else p.value = redactAll(value) as typeof p.value;
  }
}

/**
 * A copy of the kubeconfig to show (`--print`), as `kubectl config view` would: every user's
 * secrets (token, password, client key, auth-provider config, exec arguments and environment
 * values — all but the fields that hold none) replaced with REDACTED, the token in every URL
 * (proxy-url of every cluster, ours or not) with ***, and comments dropped (they may hold anything).
 */
export function redactedKubeconfig(doc: Document): Document {
  const copy = doc.clone();
  copy.commentBefore = null;
  copy.comment = null;
  visit(copy, {
    Node(_key, node) {
      node.commentBefore = undefined;
      node.comment = undefined;
      if (isScalar(node) && typeof node.value === 'string') node.value = redactProxyUrl(node.value);
    },
  });
  const root = copy.contents;
  const users = isMap(root) ? root.get('users', true) : undefined;
  if (isSeq(users)) {
    for (const u of users.items) {
      const user = isMap(u) ? u.get('user', true) : undefined;
      if (isMap(user)) redactUser(user);
    }
  }
  return copy;
}
