// noLongerAllowed: the policy re-check of a connection that carries no further requests (a
// pass-through tunnel, a WebSocket), run by the credential watch at each tick and after a reload —
// a table of what the policy in force now says about the connection as it was opened.
import t from 'tap';
import type { Exchange } from '../../../src/proxy/exchange.ts';
import { noLongerAllowed } from '../../../src/stages/decide-policy.ts';
import { mustCompileTexts } from '../policy/compile-text.ts';

const ORG = (agents: string) => `organization: T\nteams:\n  alpha: { name: Alpha, idp_groups: [alpha], policy: policies/alpha.yaml }\nagents:\n${agents}`;
const BOT = '  alpha-bot: { name: Bot, team: alpha }\n';
const rules = (...r: string[]) => `team: alpha\nrules:\n${r.map((x) => `  - ${x}`).join('\n')}\n`;

function exchange(kind: 'tunnel' | 'upgrade', principal: Exchange['principal'], target?: Exchange['target']): Exchange {
  return {
    kind, host: 'pass.example.test', hostKind: 'dns', port: 443, scheme: kind === 'tunnel' ? 'https' : 'http',
    method: kind === 'tunnel' ? 'CONNECT' : 'GET', path: '/ws', principal, target,
  } as unknown as Exchange;
}
const agent = { kind: 'agent', subject: 'alpha-bot', agent: 'alpha-bot', team: 'alpha', project: undefined } as unknown as Exchange['principal'];

const at = (address: string, source: 'dns' | 'override' = 'dns') => ({ address, port: 443, source });
const cases: Array<{ name: string; kind: 'tunnel' | 'upgrade'; org: string; policy: string; principal?: Exchange['principal']; target?: Exchange['target']; expect: RegExp | undefined }> = [
  { name: 'tunnel to a private address a rule still names', kind: 'tunnel', org: ORG(BOT), policy: rules('{ host: pass.example.test, action: direct }', '{ host: 10.1.0.0/16, action: direct }'), target: at('10.1.2.3'), expect: undefined },
  { name: 'tunnel to a private address whose rule was removed', kind: 'tunnel', org: ORG(BOT), policy: rules('{ host: pass.example.test, action: direct }'), target: at('10.1.2.3'), expect: /10\.1\.2\.3, a non-public address/ },
  { name: 'tunnel to a public address: no rule needed', kind: 'tunnel', org: ORG(BOT), policy: rules('{ host: pass.example.test, action: direct }'), target: at('93.184.216.34'), expect: undefined },
  { name: 'an upstreams: override is not an address decision', kind: 'tunnel', org: ORG(BOT), policy: rules('{ host: pass.example.test, action: direct }'), target: at('127.0.0.1', 'override'), expect: undefined },
  { name: 'tunnel, host still direct', kind: 'tunnel', org: ORG(BOT), policy: rules('{ host: pass.example.test, action: direct }', '{ host: "*", action: deny }'), expect: undefined },
  { name: 'tunnel, agent removed from org.yaml', kind: 'tunnel', org: ORG('  other-bot: { name: Other, team: alpha }\n'), policy: rules('{ host: pass.example.test, action: direct }'), expect: /alpha-bot/ },
  { name: 'tunnel, host now denied', kind: 'tunnel', org: ORG(BOT), policy: rules('{ host: "*", action: deny }'), expect: /./ },
  { name: 'tunnel, host now intercepted', kind: 'tunnel', org: ORG(BOT), policy: rules('{ host: pass.example.test, action: allow }'), expect: /now intercepted/ },
  { name: 'websocket, host still allowed', kind: 'upgrade', org: ORG(BOT), policy: rules('{ host: pass.example.test, action: allow }'), expect: undefined },
  { name: 'websocket, GET now denied on its path', kind: 'upgrade', org: ORG(BOT), policy: rules('{ host: pass.example.test, action: allow, http: [{ method: POST, action: allow }, { method: GET, path: "/ws", action: deny }] }', '{ host: "*", action: deny }'), expect: /./ },
  { name: 'no principal: nothing to re-check', kind: 'tunnel', org: ORG(BOT), policy: rules('{ host: "*", action: deny }'), principal: undefined, expect: undefined },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const set = mustCompileTexts({ org: c.org, teams: { alpha: c.policy } });
    const why = noLongerAllowed(set, exchange(c.kind, 'principal' in c ? c.principal : agent, c.target));
    if (c.expect === undefined) t.equal(why, undefined, 'still admitted');
    else t.match(why ?? '', c.expect, `no longer admitted: ${why}`);
  });
}
