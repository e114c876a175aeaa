// The Default column of docs/reference/*-yaml.md comes from the `default` annotations of the config
// schemas; the loaders apply their defaults in code. This holds the two together: for every
// declared default, a minimal document loads to the same value without the key as with the key set
// to its default, and to a different value with the key set to something else.
import t, { type Test } from 'tap';
import type { TSchema } from '@sinclair/typebox';
import { GatewayConfigSchema, parseGatewayConfig } from '../../../src/config/gateway-config.ts';
import { OrgPolicySchema, OrgSchema, TeamPolicySchema } from '../../../src/config/policy-schemas.ts';
import { parsePriceTable, PriceTableSchema } from '../../../src/config/price-config.ts';
import { parseOrgConfig } from '../../../src/config/org-config.ts';
import { parsePolicyDocument } from '../../../src/config/policy-source.ts';
import { compilePolicySet } from '../../../src/policy/compile.ts';
import { declaredDefaults, otherValues, setAt, showPath, snapshot } from './schema-defaults.ts';

/** Loads a document (JSON text is YAML) and returns a snapshot of what the loader made of it, or its problems. */
type Load = (doc: unknown) => { ok: true; snapshot: string } | { ok: false; problems: string };

function checkDefaults(t: Test, schema: TSchema, base: unknown, load: Load, noOtherValue: readonly string[] = []): void {
  const baseline = load(base);
  if (!baseline.ok) throw new Error(`the base document does not load: ${baseline.problems}`);
  const defaults = declaredDefaults(schema);
  t.ok(defaults.length > 0, 'the schema declares defaults');
  for (const d of defaults) {
    const key = showPath(d.path);
    t.test(key, async (t) => {
      const same = setAt(base, d.path, d.value);
      t.ok(same.places > 0, `the base document has a place for ${key}`);
      const loaded = load(same.doc);
      t.ok(loaded.ok, `${key}: ${JSON.stringify(d.value)} loads`, loaded.ok ? {} : { problems: loaded.problems });
      if (loaded.ok) t.equal(loaded.snapshot, baseline.snapshot, `${key} absent loads as ${JSON.stringify(d.value)}`);
      const differs = otherValues(d.value, d.node).some((v) => {
        const other = load(setAt(base, d.path, v).doc);
        return other.ok && other.snapshot !== baseline.snapshot;
      });
      if (noOtherValue.includes(key)) t.notOk(differs, `${key} has no other valid value`);
      else t.ok(differs, `${key} set to another value loads differently (the loader reads it)`);
    });
  }
}

t.test('tollgate.yaml', async (t) => {
  const env = { HOME: '/nonexistent' };
  const base = {
    sso: { issuers: [{ name: 'okta', issuer: 'https://acme.okta.com', client_id: 'tollgate' }] },
    alerts: { webhooks: [{ name: 'finops', url: 'https://hooks.slack.example/services/x' }] },
    metering: { fallback_price: { input: 1, output: 2 } },
  };
  checkDefaults(t, GatewayConfigSchema, base, (doc) => {
    const r = parseGatewayConfig('/srv/tollgate/tollgate.yaml', JSON.stringify(doc), env);
    return r.ok ? { ok: true, snapshot: snapshot(r.config) } : { ok: false, problems: JSON.stringify(r.problems) };
  }, ['alerts.webhooks[].on']);
});

t.test('prices.yaml', async (t) => {
  const base = { as_of: '2026-01-01', sources: ['test'], providers: { acme: { models: { large: { input: 1 } } } } };
  checkDefaults(t, PriceTableSchema, base, (doc) => {
    const r = parsePriceTable('prices.yaml', JSON.stringify(doc));
    return r.ok ? { ok: true, snapshot: snapshot(r.table) } : { ok: false, problems: JSON.stringify(r.problems) };
  });
});

t.test('org.yaml, policies/<team>.yaml and policies/_org.yaml', async (t) => {
  const rule = { host: 'api.example.com', action: 'allow', http: [{ method: 'GET', path: '/V1/**', action: 'allow' }] };
  const docs = {
    org: { organization: 'Acme', teams: { sre: { name: 'SRE', idp_groups: ['sre'] } }, agents: { bot: { name: 'Bot', team: 'sre', rules: [rule] } } },
    team: { team: 'sre', rules: [rule], credentials: [{ host: 'api.example.com', header: { name: 'x-api-key', secret: 'example-key' } }] },
    guardrails: { rules: [{ host: 'evil.example', action: 'deny', http: [{ path: '/Admin/**' }] }] },
  };
  /** Compiles the three documents, with `doc` in place of the one `which` names. */
  const compile = (which: keyof typeof docs) => (doc: unknown) => {
    const all = { ...docs, [which]: doc };
    const org = parseOrgConfig('org.yaml', JSON.stringify(all.org));
    if (!org.ok) return { ok: false as const, problems: JSON.stringify(org.problems) };
    const team = parsePolicyDocument('policies/sre.yaml', JSON.stringify(all.team), TeamPolicySchema, 'team policy');
    const guardrails = parsePolicyDocument('policies/_org.yaml', JSON.stringify(all.guardrails), OrgPolicySchema, 'guardrail file');
    if (!team.ok || !guardrails.ok) return { ok: false as const, problems: JSON.stringify([team, guardrails]) };
    const r = compilePolicySet({ org: org.parsed, guardrails: guardrails.input, teamPolicies: new Map([['sre', team.input]]) });
    return r.ok ? { ok: true as const, snapshot: snapshot(r.set) } : { ok: false as const, problems: JSON.stringify(r.problems) };
  };
  t.test('org.yaml', async (t) => checkDefaults(t, OrgSchema, docs.org, compile('org')));
  t.test('policies/<team>.yaml', async (t) => checkDefaults(t, TeamPolicySchema, docs.team, compile('team')));
  t.test('policies/_org.yaml', async (t) => checkDefaults(t, OrgPolicySchema, docs.guardrails, compile('guardrails'), ['rules[].http[].action']));
});
