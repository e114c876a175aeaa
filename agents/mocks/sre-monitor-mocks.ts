// Local stand-ins for everything the example SRE Monitor (agents/sre-monitor.js) talks to — the
// production EKS API server, Slack's incoming webhooks and the Anthropic API — and a gateway
// configuration that sends the monitor's requests to them, so that a fresh clone can run the agent
// under `tollgate agents` and see its requests, its denials and its spend in the audit trail.
//
//   node --import tsx agents/mocks/sre-monitor-mocks.ts [--config tollgate.yaml] [--port 9443] [--healthy]
//
// It serves the three hosts on one loopback port (HTTPS; the certificate for each name is minted
// from a mock CA made on first run) and writes, next to the files they are derived from:
//   tollgate.mocks.yaml  tollgate.yaml with `upstreams:` mapping the three hosts to the mock port,
//                        `tls.upstream_ca` trusting the mock CA, data and secrets under data/mocks/
//                        (secrets from TOLLGATE_MOCK_SECRET_*, so no real key ever reaches a mock);
//   org.mocks.yaml       org.yaml with the `ca:` of each connection that owns a mocked host (the
//                        production kubernetes connection) pointing at the mock CA: the gateway
//                        verifies such a host against its connection's CA alone, and no server can
//                        present a certificate from the example certs/eks-*-ca.pem (keys discarded);
//   data/mocks/          upstream-ca.pem and its key, secrets/ with mock values, and the gateway's
//                        tollgate.db and agents/ once it runs with tollgate.mocks.yaml.
// Diff them against tollgate.yaml and org.yaml to see what the mock run changes. The walkthrough is
// docs/agents.md ("Run the SRE Monitor against local mocks").
//
// The mock Kubernetes API reports one NotReady node (node-2) unless --healthy, so that the monitor
// takes its whole path: it tries to cordon node-2 (denied: its org.yaml rules only read), asks
// Claude for a diagnosis (metered) and posts the alert to Slack. Each request the mocks receive is
// printed with the credential the gateway injected.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDocument, type Scalar } from 'yaml';
import { loadGatewayConfig } from '../../src/config/gateway-config.ts';
import { parseOrgConfig } from '../../src/config/org-config.ts';
import { createCertificateAuthority, loadCertificateAuthority } from '../../src/tls/certificate-authority.ts';
import { createLeafMinter } from '../../src/tls/leaf-minter.ts';
import { pinnedCaEntries, pinnedCaFilesFor } from '../../src/upstream/connection-ca.ts';

export const KUBE_HOST = 'prod.gr7.eu-west-1.eks.amazonaws.com';
export const SLACK_HOST = 'hooks.slack.com';
export const ANTHROPIC_HOST = 'api.anthropic.com';
export const MOCKED_HOSTS = [KUBE_HOST, SLACK_HOST, ANTHROPIC_HOST] as const;

/** The secrets the SRE policy binds to the mocked hosts, with the values the mocks expect. */
export const MOCK_SECRETS = {
  'eks-production-token': 'mock-eks-production-token',
  'anthropic-api-key': 'mock-anthropic-api-key',
} as const;

export interface MockFiles {
  /** tollgate.mocks.yaml: pass it as --config (or TOLLGATE_CONFIG) to serve, agents, audit, costs. */
  configFile: string;
  orgFile: string;
  /** data/mocks: the mock CA, mock secrets, and the mock run's data_dir. */
  dir: string;
  caFile: string;
  /** `project/connection` of each connection whose ca: now names the mock CA. */
  repointed: string[];
}

/** `./a/b` from `from` to `to`, with forward slashes (paths in the YAML files). */
function rel(from: string, to: string): string {
  const r = path.relative(from, to).split(path.sep).join('/');
  return r.startsWith('.') ? r : `./${r}`;
}

/** The mock CA of the gateway configuration `baseConfig` (data/mocks/upstream-ca.pem), made on first use. */
export async function ensureMockCa(baseConfig: string): Promise<{ dir: string; caFile: string; keyFile: string }> {
  const dir = path.join(loadGatewayConfig(path.resolve(baseConfig)).dataDir, 'mocks');
  const caFile = path.join(dir, 'upstream-ca.pem');
  const keyFile = path.join(dir, 'upstream-ca.key');
  if (!existsSync(caFile) && !existsSync(keyFile)) await createCertificateAuthority(caFile, keyFile, 'Tollgate mock upstreams CA');
  return { dir, caFile, keyFile };
}

/**
 * Writes tollgate.mocks.yaml, org.mocks.yaml and data/mocks/ (the mock CA is made once and kept)
 * for mocks listening on 127.0.0.1:`port`. `listen` overrides the gateway's listen addresses.
 */
export async function writeMockFiles(opts: { baseConfig: string; port: number; listen?: { proxy: string; admin: string } }): Promise<MockFiles> {
  const baseConfig = path.resolve(opts.baseConfig);
  const root = path.dirname(baseConfig);
  const gateway = loadGatewayConfig(baseConfig);
  const { dir, caFile } = await ensureMockCa(baseConfig);

  const secretsDir = path.join(dir, 'secrets');
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  for (const [name, value] of Object.entries(MOCK_SECRETS)) {
    writeFileSync(path.join(secretsDir, name), value, { mode: 0o600 });
    chmodSync(path.join(secretsDir, name), 0o600);
  }

  // org.mocks.yaml sits next to org.yaml, so that its other relative paths (policies, the other
  // connections' CA files, the agents' commands) still resolve.
  const orgDir = path.dirname(gateway.org);
  const orgFile = path.join(orgDir, 'org.mocks.yaml');
  const orgText = readFileSync(gateway.org, 'utf8');
  const parsed = parseOrgConfig(path.basename(gateway.org), orgText);
  if (!parsed.ok) throw new Error(`${gateway.org} is invalid; run tollgate policy check first`);
  // Only the ca: values change, in place: every other byte, and so every rule's line number (the
  // rule ids in the audit trail), is the same as in org.yaml.
  const org = parseDocument(orgText);
  const edits: Array<{ from: number; to: number; text: string }> = [];
  const repointed: string[] = [];
  for (const entry of pinnedCaEntries(parsed.parsed.org, (ca) => ca)) {
    if (!MOCKED_HOSTS.some((h) => pinnedCaFilesFor([entry], h).length > 0)) continue;
    const [project = '', name] = entry.label.split('/');
    const index = parsed.parsed.value.projects?.[project]?.connections.findIndex((c) => c.name === name) ?? -1;
    const node = org.getIn(['projects', project, 'connections', index, 'ca'], true) as Scalar | undefined;
    if (!node?.range) throw new Error(`${gateway.org}: cannot find the ca: of connection ${entry.label}`);
    const lineEnd = orgText.indexOf('\n', node.range[1]);
    edits.push({ from: node.range[0], to: node.range[1], text: rel(orgDir, caFile) });
    if (!orgText.slice(node.range[1], lineEnd < 0 ? undefined : lineEnd).includes('#')) {
      edits.push({ from: node.range[1], to: node.range[1], text: `   # mock run; org.yaml: ${String(node.value)}` });
    }
    repointed.push(entry.label);
  }
  let orgOut = orgText;
  for (const e of edits.sort((a, b) => b.from - a.from)) orgOut = orgOut.slice(0, e.from) + e.text + orgOut.slice(e.to);
  orgOut += `${orgOut.endsWith('\n') ? '' : '\n'}# Generated from ${path.basename(gateway.org)} by agents/mocks/sre-monitor-mocks.ts, on every start of the mocks;\n` +
    `# only the ca: of ${repointed.join(', ') || 'no connection'} differs (the mock CA).\n`;
  writeFileSync(orgFile, orgOut);

  const configFile = path.join(root, 'tollgate.mocks.yaml');
  const config = parseDocument(readFileSync(baseConfig, 'utf8'));
  const base = (config.toJS() ?? {}) as { upstreams?: Record<string, string>; tls?: { upstream_ca?: string[] } };
  if (opts.listen) config.set('listen', opts.listen);
  config.set('data_dir', rel(root, dir));
  config.set('org', rel(root, orgFile));
  config.set('secrets', { env_prefix: 'TOLLGATE_MOCK_SECRET_', dir: rel(root, secretsDir) });
  config.set('upstreams', { ...base.upstreams, ...Object.fromEntries(MOCKED_HOSTS.map((h) => [h, `127.0.0.1:${opts.port}`])) });
  config.set('tls', { ...base.tls, upstream_ca: [...(base.tls?.upstream_ca ?? []), rel(root, caFile)] });
  config.commentBefore = ` Generated by agents/mocks/sre-monitor-mocks.ts from ${path.basename(baseConfig)} for the run against local mocks;\n` +
    ' rewritten on every start of the mocks. Changed: data_dir, org, secrets, upstreams, tls.';
  writeFileSync(configFile, config.toString({ lineWidth: 0 }));
  return { configFile, orgFile, dir, caFile, repointed };
}

export interface MockRequest { host: string; method: string; path: string; credential: string; body: string }

export interface MockUpstreams {
  port: number;
  /** every request received, in order */
  seen: MockRequest[];
  close(): Promise<void>;
}

function nodeList(healthy: boolean) {
  const node = (name: string, ready: boolean) => ({
    metadata: { name, labels: { 'kubernetes.io/os': 'linux' } },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'Unknown', reason: ready ? 'KubeletReady' : 'NodeStatusUnknown' }] },
  });
  return { kind: 'NodeList', apiVersion: 'v1', metadata: {}, items: [node('node-1', true), node('node-2', healthy), node('node-3', true)] };
}

/** What the gateway put in the credential header, in words (the mock values are no secret). */
function credentialOf(host: string, headers: IncomingHttpHeaders): string {
  if (host === KUBE_HOST && headers['authorization'] === `Bearer ${MOCK_SECRETS['eks-production-token']}`) return 'Bearer <eks-production-token>, injected by the gateway';
  if (host === ANTHROPIC_HOST && headers['x-api-key'] === MOCK_SECRETS['anthropic-api-key']) return 'x-api-key <anthropic-api-key>, injected by the gateway';
  return headers['authorization'] !== undefined || headers['x-api-key'] !== undefined ? 'an unexpected credential' : 'none';
}

function answer(host: string, method: string, url: string, body: string, healthy: boolean): { status: number; json: unknown } {
  if (host === KUBE_HOST) {
    if (method === 'GET' && url === '/readyz') return { status: 200, json: 'ok' };
    if (method === 'GET' && url === '/api/v1/nodes') return { status: 200, json: nodeList(healthy) };
    const node = /^\/api\/v1\/nodes\/([^/?]+)$/.exec(url);
    if (method === 'PATCH' && node) return { status: 200, json: { kind: 'Node', metadata: { name: node[1] }, spec: { unschedulable: true } } };
    return { status: 404, json: { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 } };
  }
  if (host === SLACK_HOST && method === 'POST' && url.startsWith('/services/')) return { status: 200, json: 'ok' };
  if (host === ANTHROPIC_HOST && method === 'POST' && url === '/v1/messages') {
    let request: { model?: string };
    try {
      request = JSON.parse(body || '{}') as { model?: string };
    } catch {
      return { status: 400, json: { type: 'error', error: { type: 'invalid_request_error', message: 'the body is not JSON' } } };
    }
    const model = request.model ?? 'claude-haiku-4-5';
    const text = 'node-2 stopped reporting (NodeStatusUnknown): its kubelet is down or the node lost its network. Check the instance status in EC2, then `journalctl -u kubelet` on the node.';
    return {
      status: 200,
      json: {
        id: 'msg_mock_01', type: 'message', role: 'assistant', model, content: [{ type: 'text', text }],
        stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 182, output_tokens: 41 },
      },
    };
  }
  return { status: 404, json: { error: `the mocks do not serve ${method} ${host}${url}` } };
}

/** Serves the mocked hosts on 127.0.0.1:`port` (0: any free port), with certificates from the mock CA. */
export async function startMockUpstreams(opts: { ca: { caFile: string; keyFile: string }; port: number; healthy?: boolean; log?: (line: string) => void }): Promise<MockUpstreams> {
  const ca = await loadCertificateAuthority(opts.ca.caFile, opts.ca.keyFile);
  const minter = await createLeafMinter(ca);
  const seen: MockRequest[] = [];
  const server = https.createServer({
    SNICallback: (name, cb) => {
      if (!(MOCKED_HOSTS as readonly string[]).includes(name)) { cb(new Error(`not a mocked host: ${name}`)); return; }
      minter.contextFor(name, 'dns').then((ctx) => cb(null, ctx), (err: Error) => cb(err));
    },
  }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '');
      const body = Buffer.concat(chunks).toString('utf8');
      const r: MockRequest = { host, method: req.method ?? '', path: req.url ?? '', credential: credentialOf(host, req.headers), body };
      seen.push(r);
      opts.log?.(`${new Date().toISOString()} ${r.method} https://${host}${r.path}  credential: ${r.credential}`);
      const a = answer(host, r.method, r.path, body, opts.healthy ?? false);
      res.writeHead(a.status, { 'content-type': typeof a.json === 'string' ? 'text/plain' : 'application/json' });
      res.end(typeof a.json === 'string' ? a.json : JSON.stringify(a.json));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { config: { type: 'string', default: 'tollgate.yaml' }, port: { type: 'string', default: '9443' }, healthy: { type: 'boolean', default: false } },
  });
  const baseConfig = path.resolve(values.config);
  const mocks = await startMockUpstreams({ ca: await ensureMockCa(baseConfig), port: Number(values.port), healthy: values.healthy, log: (l) => process.stdout.write(`${l}\n`) });
  const files = await writeMockFiles({ baseConfig, port: mocks.port });
  const cfg = path.relative(process.cwd(), files.configFile) || files.configFile;
  process.stdout.write([
    `mocks of ${MOCKED_HOSTS.join(', ')} on https://127.0.0.1:${mocks.port} (${values.healthy ? 'all nodes Ready' : 'node-2 NotReady'})`,
    `wrote ${cfg}, ${path.relative(process.cwd(), files.orgFile)} (ca: of ${files.repointed.join(', ') || 'no connection'} → the mock CA) and ${path.relative(process.cwd(), files.dir)}/`,
    'next, each in its own terminal:',
    `  ./bin/tollgate serve --dev --config ${cfg}`,
    `  ./bin/tollgate agents --only sre-monitor --config ${cfg}`,
    `  ./bin/tollgate audit --agent sre-monitor --config ${cfg}`,
    'Ctrl-C stops the mocks; requests they receive follow.',
    '',
  ].join('\n'));
  const stop = () => { void mocks.close().then(() => process.exit(0)); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
