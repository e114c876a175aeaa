#!/usr/bin/env node
// SRE Monitor — the example managed agent of the SRE team (org.yaml: agents.sre-monitor).
// A heartbeat check of the Kubernetes API: GET /readyz and GET /api/v1/nodes; when either fails,
// or a node is NotReady, it posts an alert to a Slack incoming webhook.
//
// It holds no credential: everything goes through the gateway (HTTPS_PROXY carries its agent
// token; the CA comes from NODE_EXTRA_CA_CERTS), which applies the SRE policy, injects the bound
// credentials and writes the audit trail. Node's own fetch ignores HTTPS_PROXY on Node 20, hence
// undici's EnvHttpProxyAgent.
//
// Environment: KUBE_API (default https://prod.gr7.eu-west-1.eks.amazonaws.com), SLACK_WEBHOOK_URL
// (default https://hooks.slack.com/services/T000/B000/tollgate-demo), TIMEOUT_MS (default 10000).
// Exit: 0 healthy or alert delivered; 1 unhealthy and the alert failed too.
import { EnvHttpProxyAgent, fetch, setGlobalDispatcher } from 'undici';

setGlobalDispatcher(new EnvHttpProxyAgent());
const kube = (process.env.KUBE_API ?? 'https://prod.gr7.eu-west-1.eks.amazonaws.com').replace(/\/+$/, '');
const slack = process.env.SLACK_WEBHOOK_URL ?? 'https://hooks.slack.com/services/T000/B000/tollgate-demo';
const timeoutMs = Number(process.env.TIMEOUT_MS ?? 10_000);
const agent = process.env.TOLLGATE_AGENT ?? 'sre-monitor';

async function get(path) {
  const started = Date.now();
  try {
    const res = await fetch(`${kube}${path}`, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
    const text = await res.text();
    return { path, status: res.status, ok: res.ok, ms: Date.now() - started, text, denied: res.headers.get('x-tollgate-decision') === 'deny' };
  } catch (err) {
    return { path, status: 0, ok: false, ms: Date.now() - started, text: '', error: err.cause?.message ?? err.message };
  }
}

function notReadyNodes(text) {
  try {
    const list = JSON.parse(text);
    return (list.items ?? []).filter((n) => !(n.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')).map((n) => n.metadata?.name ?? '?');
  } catch {
    return ['(unreadable node list)'];
  }
}

const readyz = await get('/readyz');
const nodes = await get('/api/v1/nodes');
const problems = [];
for (const r of [readyz, nodes]) {
  if (!r.ok) problems.push(`${r.path}: ${r.status === 0 ? r.error : `HTTP ${r.status}${r.denied ? ' (denied by Tollgate policy)' : ''}`}`);
}
const notReady = nodes.ok ? notReadyNodes(nodes.text) : [];
if (notReady.length > 0) problems.push(`nodes not ready: ${notReady.join(', ')}`);

const summary = { agent, kube, readyz: readyz.status, nodes: nodes.status, ms: readyz.ms + nodes.ms, healthy: problems.length === 0, problems };
process.stdout.write(`${JSON.stringify(summary)}\n`);
if (problems.length === 0) process.exit(0);

try {
  const res = await fetch(slack, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text: `:rotating_light: Kubernetes API check failed for ${kube}\n• ${problems.join('\n• ')}` }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  process.stdout.write(`${JSON.stringify({ agent, alert: 'slack', status: res.status })}\n`);
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  process.stderr.write(`alert to Slack failed: ${err.cause?.message ?? err.message}\n`);
  process.exit(1);
}
