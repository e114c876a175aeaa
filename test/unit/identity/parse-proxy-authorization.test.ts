import t from 'tap';
import { parseProxyAuthorization } from '../../../src/identity/parse-proxy-authorization.ts';

const TOKEN = 'tg_' + 'A'.repeat(40) + '-_x';
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

const cases: Array<{ name: string; headers: string[]; expect: Record<string, unknown> }> = [
  { name: 'no header', headers: [], expect: { ok: false, reason: 'auth_required' } },
  { name: 'empty header', headers: ['  '], expect: { ok: false, reason: 'auth_required' } },
  { name: 'two headers', headers: [`Bearer ${TOKEN}`, `Basic ${b64(`sre:${TOKEN}`)}`], expect: { ok: false, reason: 'malformed_request' } },
  { name: 'basic team:token', headers: [`Basic ${b64(`sre:${TOKEN}`)}`], expect: { ok: true, scope: 'sre', token: TOKEN, scheme: 'basic' } },
  { name: 'basic team.project:token', headers: [`Basic ${b64(`sre.production:${TOKEN}`)}`], expect: { ok: true, scope: 'sre.production', token: TOKEN } },
  { name: 'basic :token (no scope)', headers: [`Basic ${b64(`:${TOKEN}`)}`], expect: { ok: true, scope: undefined, token: TOKEN } },
  { name: 'basic token: (token as user name)', headers: [`Basic ${b64(`${TOKEN}:`)}`], expect: { ok: true, scope: undefined, token: TOKEN } },
  { name: 'lower-case scheme', headers: [`basic ${b64(`sre:${TOKEN}`)}`], expect: { ok: true, scope: 'sre', token: TOKEN } },
  { name: 'upper-case scheme, extra spaces', headers: [`  BASIC   ${b64(`sre:${TOKEN}`)}  `], expect: { ok: true, scope: 'sre' } },
  { name: 'basic without padding', headers: [`Basic ${b64(`sre:${TOKEN}`).replace(/=+$/, '')}`], expect: { ok: true, scope: 'sre', token: TOKEN } },
  { name: 'password may contain a colon', headers: [`Basic ${b64('sre:a:b')}`], expect: { ok: true, scope: 'sre', token: 'a:b' } },
  { name: 'bearer', headers: [`Bearer ${TOKEN}`], expect: { ok: true, scope: undefined, token: TOKEN, scheme: 'bearer' } },
  { name: 'lower-case bearer', headers: [`bearer ${TOKEN}`], expect: { ok: true, token: TOKEN } },
  { name: 'empty bearer', headers: ['Bearer'], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'bearer with spaces inside', headers: ['Bearer a b'], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'empty basic', headers: ['Basic '], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'invalid base64', headers: ['Basic !!!notbase64'], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'base64 of invalid utf-8', headers: [`Basic ${Buffer.from([0x73, 0x3a, 0xff, 0xfe]).toString('base64')}`], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'no colon', headers: [`Basic ${b64(TOKEN)}`], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'empty password', headers: [`Basic ${b64('sre:')}`], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'upper-case scope', headers: [`Basic ${b64(`SRE:${TOKEN}`)}`], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'scope with two dots', headers: [`Basic ${b64(`a.b.c:${TOKEN}`)}`], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'scope starting with hyphen', headers: [`Basic ${b64(`-sre:${TOKEN}`)}`], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'scope with a path', headers: [`Basic ${b64(`../x:${TOKEN}`)}`], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'unknown scheme', headers: ['Token x'], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'digest', headers: ['Digest username="a"'], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'too long', headers: [`Bearer ${'a'.repeat(5000)}`], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'comma-joined', headers: [`Bearer ${TOKEN}, Basic ${b64(`sre:${TOKEN}`)}`], expect: { ok: false, reason: 'auth_invalid' } },
  // security case 5.01: bare schemes, look-alike schemes, loose base64
  { name: 'bare Basic', headers: ['Basic'], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'bare lower-case bearer', headers: ['bearer'], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'upper-case BEARER', headers: [`BEARER ${TOKEN}`], expect: { ok: true, token: TOKEN, scheme: 'bearer' } },
  { name: 'unknown scheme carrying a valid token', headers: [`Token ${TOKEN}`], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'scheme with a suffix (Basicx)', headers: [`Basicx ${b64(`sre:${TOKEN}`)}`], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'scheme with a suffix (Bearerx)', headers: [`Bearerx ${TOKEN}`], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'negotiate', headers: ['Negotiate YII='], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'base64 with a space inside', headers: [`Basic ${b64(`sre:${TOKEN}`).slice(0, 8)} ${b64(`sre:${TOKEN}`).slice(8)}`], expect: { ok: false, reason: 'auth_invalid' } },
  { name: 'base64 with too much padding', headers: [`Basic ${b64(`sre:${TOKEN}`)}===`], expect: { ok: false, reason: 'auth_invalid' } },
  // 5.04: a JWT (an ID token) is handed on whole; token verification refuses it (it is no gateway token)
  { name: 'a JWT as bearer', headers: ['Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln'], expect: { ok: true, token: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln' } },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const r = parseProxyAuthorization(c.headers);
    t.match(r, c.expect);
    if ('scope' in c.expect && c.expect.scope === undefined && r.ok) t.equal(r.scope, undefined);
    if (!r.ok) {
      t.type(r.message, 'string');
      t.notOk(r.message.includes(TOKEN), 'the message never echoes the token');
    }
  });
}
