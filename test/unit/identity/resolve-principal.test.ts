import t from 'tap';
import { resolvePrincipal } from '../../../src/identity/resolve-principal.ts';

const user = { kind: 'user' as const, id: 'tok_1', subject: 'ana@acme.example', teams: ['sre', 'backend'], projects: undefined };
const single = { ...user, teams: ['sre'] };
const agent = { kind: 'agent' as const, id: 'tok_2', subject: 'sre-monitor', teams: ['sre'], projects: ['production'] };
const agentTwo = { ...agent, projects: ['production', 'staging'] };

const cases = [
  { name: 'single team, no scope', rec: single, scope: undefined, expect: { ok: true, principal: { kind: 'user', id: 'tok_1', subject: 'ana@acme.example', team: 'sre' } } },
  { name: 'single team, named', rec: single, scope: 'sre', expect: { ok: true, principal: { team: 'sre' } } },
  { name: 'single team, with project', rec: single, scope: 'sre.staging', expect: { ok: true, principal: { team: 'sre', project: 'staging' } } },
  { name: 'two teams, no scope is ambiguous', rec: user, scope: undefined, expect: { ok: false, reason: 'auth_invalid', message: /use <team>:<token> as proxy credentials: one of sre, backend/ } },
  { name: 'two teams, empty scope is ambiguous', rec: user, scope: '', expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'two teams, one named', rec: user, scope: 'backend', expect: { ok: true, principal: { team: 'backend' } } },
  { name: 'team not on the token', rec: user, scope: 'frontend', expect: { ok: false, reason: 'auth_invalid', message: /not valid for team frontend; it is valid for: sre, backend/ } },
  { name: 'invalid scope syntax', rec: user, scope: 'SRE', expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'agent defaults to its only project', rec: agent, scope: undefined, expect: { ok: true, principal: { kind: 'agent', agent: 'sre-monitor', team: 'sre', project: 'production' } } },
  { name: 'agent, project outside its narrowing', rec: agent, scope: 'sre.staging', expect: { ok: false, reason: 'auth_invalid', message: /project staging/ } },
  { name: 'agent, two projects, none named', rec: agentTwo, scope: 'sre', expect: { ok: true, principal: { team: 'sre' } } },
  { name: 'agent, two projects, one named', rec: agentTwo, scope: 'sre.staging', expect: { ok: true, principal: { project: 'staging' } } },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const r = resolvePrincipal(c.rec, c.scope);
    t.match(r, c.expect);
    if (r.ok && c.rec.kind === 'user') t.notOk('agent' in r.principal, 'users carry no agent field');
    if (r.ok && c.name === 'agent, two projects, none named') t.notOk('project' in r.principal);
  });
}
