#!/usr/bin/env node
// SRE Monitor — the example managed agent of the SRE team (org.yaml: agents.sre-monitor).
// A heartbeat check of the Kubernetes API: GET /readyz and GET /api/v1/nodes. When either fails,
// or a node is not Ready, it
//   - tries to cordon each node that is not Ready (PATCH /api/v1/nodes/NAME, spec.unschedulable).
//     The example org.yaml lets the monitor only read, so the gateway refuses this with 403 and the
//     alert says so: a managed agent's own rules narrow its team's policy, whatever its code tries;
//   - asks Claude for a likely cause (Anthropic Messages API; metered against its budget);
//   - posts an alert to a Slack incoming webhook, with the problems, the cordon outcome and the
//     diagnosis.
//
// It holds no credential: everything goes through the gateway (HTTPS_PROXY carries its agent
// token; the CA comes from NODE_EXTRA_CA_CERTS), which applies the SRE policy, injects the bound
// credentials (the cluster token, the Anthropic key) and writes the audit trail. Node's own fetch
// ignores HTTPS_PROXY on Node 20, hence undici's EnvHttpProxyAgent.
//
// Environment: KUBE_API (default https://prod.gr7.eu-west-1.eks.amazonaws.com), SLACK_WEBHOOK_URL
// (default https://hooks.slack.com/services/T000/B000/tollgate-demo), ANTHROPIC_BASE_URL (default
// https://api.anthropic.com), ANTHROPIC_MODEL (default claude-haiku-4-5), TIMEOUT_MS (default 10000).
// Exit: 0 healthy or alert delivered; 1 unhealthy and the alert failed too.
import { EnvHttpProxyAgent, fetch, setGlobalDispatcher } from 'undici';

setGlobalDispatcher(new EnvHttpProxyAgent());
const kube = (process.env.KUBE_API ?? 'https://prod.gr7.eu-west-1.eks.amazonaws.com').replace(/\/+$/, '');
const slack = process.env.SLACK_WEBHOOK_URL ?? 'https://hooks.slack.com/services/T000/B000/tollgate-demo';
const anthropic = (process.env.ANTHROPIC_BASE_URL ?? 'https://api.anthropic.com').replace(/\/+$/, '');
const model = process.env.ANTHROPIC_MODEL ?? 'claude-haiku-4-5';
const timeoutMs = Number(process.env.TIMEOUT_MS ?? 10_000);
const agent = process.env.TOLLGATE_AGENT ?? 'sre-monitor';

/** One request; never throws. `denied` names the rule when the gateway refused it. */
async function call(url, init = {}) {
  const started = Date.now();
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    const denied = res.headers.get('x-tollgate-decision') === 'deny' ? res.headers.get('x-tollgate-rule') ?? 'a rule' : null;
    return { status: res.status, ok: res.ok, ms: Date.now() - started, text, denied };
  } catch (err) {
    return { status: 0, ok: false, ms: Date.now() - started, text: '', denied: null, error: err.cause?.message ?? err.message };
  }
}

function outcome(r) {
  if (r.status === 0) return r.error;
  return `HTTP ${r.status}${r.denied ? ` (denied by Tollgate policy, ${r.denied})` : ''}`;
}

/** The names of the nodes that are not Ready, or null when the list cannot be read. */
function notReadyNodes(text) {
  try {
    const list = JSON.parse(text);
    return (list.items ?? []).filter((n) => !(n.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')).map((n) => n.metadata?.name ?? '?');
  } catch {
    return null;
  }
}

const json = { accept: 'application/json' };
const readyz = await call(`${kube}/readyz`, { headers: json });
const nodes = await call(`${kube}/api/v1/nodes`, { headers: json });
const problems = [];
if (!readyz.ok) problems.push(`/readyz: ${outcome(readyz)}`);
if (!nodes.ok) problems.push(`/api/v1/nodes: ${outcome(nodes)}`);
const notReady = nodes.ok ? notReadyNodes(nodes.text) : [];
if (notReady === null) problems.push('/api/v1/nodes: unreadable node list');
else if (notReady.length > 0) problems.push(`nodes not ready: ${notReady.join(', ')}`);

const summary = { agent, kube, readyz: readyz.status, nodes: nodes.status, ms: readyz.ms + nodes.ms, healthy: problems.length === 0, problems };
if (problems.length === 0) {
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exit(0);
}

const cordons = [];
for (const node of notReady ?? []) {
  const r = await call(`${kube}/api/v1/nodes/${encodeURIComponent(node)}`, {
    method: 'PATCH',
    headers: { ...json, 'content-type': 'application/strategic-merge-patch+json' },
    body: JSON.stringify({ spec: { unschedulable: true } }),
  });
  cordons.push({ node, status: r.status, result: r.ok ? 'cordoned' : outcome(r) });
}

const asked = await call(`${anthropic}/v1/messages`, {
  method: 'POST',
  headers: { ...json, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
  body: JSON.stringify({
    model,
    max_tokens: 300,
    messages: [{ role: 'user', content: `You are an SRE on call. A health check of the Kubernetes API ${kube} found:\n- ${problems.join('\n- ')}\nIn two sentences: the most likely cause, and the first thing to check.` }],
  }),
});
let diagnosis = null;
if (asked.ok) {
  try {
    diagnosis = JSON.parse(asked.text).content?.find((c) => c.type === 'text')?.text ?? null;
  } catch {
    diagnosis = null;
  }
}
const diagnosisState = diagnosis !== null ? 'ok' : asked.ok ? `HTTP ${asked.status} with no text in the reply` : outcome(asked);
process.stdout.write(`${JSON.stringify({ ...summary, cordons, diagnosis: diagnosisState })}\n`);

const lines = [
  `:rotating_light: Kubernetes API check failed for ${kube}`,
  ...problems.map((p) => `• ${p}`),
  ...cordons.map((c) => `• cordon ${c.node}: ${c.result}`),
  ...(diagnosis ? [`Likely cause (${model}): ${diagnosis}`] : []),
];
const alert = await call(slack, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: lines.join('\n') }) });
process.stdout.write(`${JSON.stringify({ agent, alert: 'slack', status: alert.status, ...(alert.ok ? {} : { error: outcome(alert) }) })}\n`);
process.exit(alert.ok ? 0 : 1);
