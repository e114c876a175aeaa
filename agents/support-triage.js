#!/usr/bin/env node
// Support Triage — the example managed agent of Support Operations (org.yaml: agents.support-triage).
// Reads the new Zendesk tickets, looks each requester up in Salesforce (contact and account), and
// prints one triage line per ticket (priority from the account's tier).
//
// It holds no credential: the gateway injects Zendesk's basic auth and Salesforce's bearer token
// from the Support Operations policy; HTTPS_PROXY carries the agent token and NODE_EXTRA_CA_CERTS
// the CA. Node's fetch ignores HTTPS_PROXY on Node 20, hence undici's EnvHttpProxyAgent.
//
// Environment: ZENDESK_URL (default https://acme.zendesk.com), SALESFORCE_URL (default
// https://acme.my.salesforce.com), TRIAGE_LIMIT (default 25), TIMEOUT_MS (default 10000).
// Exit: 0 done (also with zero tickets); 1 when Zendesk or Salesforce could not be read.
import { EnvHttpProxyAgent, fetch, setGlobalDispatcher } from 'undici';

setGlobalDispatcher(new EnvHttpProxyAgent());
const zendesk = (process.env.ZENDESK_URL ?? 'https://acme.zendesk.com').replace(/\/+$/, '');
const salesforce = (process.env.SALESFORCE_URL ?? 'https://acme.my.salesforce.com').replace(/\/+$/, '');
const limit = Number(process.env.TRIAGE_LIMIT ?? 25);
const timeoutMs = Number(process.env.TIMEOUT_MS ?? 10_000);

async function getJson(url) {
  const res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) {
    const why = res.headers.get('x-tollgate-decision') === 'deny' ? ` (denied by Tollgate: ${res.headers.get('x-tollgate-rule') ?? 'no rule'})` : '';
    throw new Error(`GET ${new URL(url).host}${new URL(url).pathname}: HTTP ${res.status}${why}`);
  }
  return res.json();
}

const soql = (email) => `SELECT Id, Name, Account.Name, Account.Tier__c FROM Contact WHERE Email = '${email.replace(/['\\]/g, '\\$&')}' LIMIT 1`;
const priorityFor = (tier) => (tier === 'Enterprise' ? 'high' : tier === 'Business' ? 'normal' : 'low');

try {
  const { tickets = [] } = await getJson(`${zendesk}/api/v2/tickets.json?sort_by=created_at&sort_order=desc&per_page=${limit}`);
  const fresh = tickets.filter((t) => t.status === 'new').slice(0, limit);
  for (const t of fresh) {
    const { user } = await getJson(`${zendesk}/api/v2/users/${encodeURIComponent(t.requester_id)}.json`);
    const found = await getJson(`${salesforce}/services/data/v59.0/query?q=${encodeURIComponent(soql(user?.email ?? ''))}`);
    const contact = found.records?.[0];
    const tier = contact?.Account?.Tier__c;
    process.stdout.write(`${JSON.stringify({
      ticket: t.id, subject: t.subject, requester: user?.email ?? null,
      account: contact?.Account?.Name ?? null, tier: tier ?? null, suggested_priority: priorityFor(tier),
    })}\n`);
  }
  process.stdout.write(`${JSON.stringify({ agent: process.env.TOLLGATE_AGENT ?? 'support-triage', triaged: fresh.length })}\n`);
} catch (err) {
  process.stderr.write(`triage failed: ${err.cause?.message ?? err.message}\n`);
  process.exit(1);
}
