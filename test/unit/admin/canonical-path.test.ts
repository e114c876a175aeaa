// canonicalAdminPath: every spelling of an admin path maps to one canonical path (9.02).
import t from 'tap';
import { canonicalAdminPath } from '../../../src/admin/canonical-path.ts';

const same: Array<[string, string]> = [
  ['/api/v1/audit', '/api/v1/audit'],
  ['/API/v1/audit', '/api/v1/audit'],
  ['/api/V1/AUDIT', '/api/v1/audit'],
  ['/api/v1/../v1/audit', '/api/v1/audit'],
  ['/api/v1/../../api/v1/audit', '/api/v1/audit'],
  ['/api/v1/./audit', '/api/v1/audit'],
  ['//api//v1///audit', '/api/v1/audit'],
  ['/api/v1/audit/', '/api/v1/audit'],
  ['/api/v1/audit;x', '/api/v1/audit'],
  ['/api;x/v1;y/audit;jsessionid=1', '/api/v1/audit'],
  ['/api/v1/%61udit', '/api/v1/audit'],
  ['/api/v1/%2e%2e/v1/audit', '/api/v1/audit'],
  ['/api/v1/audit?since=24h#frag', '/api/v1/audit'],
  ['/../../../etc/passwd', '/etc/passwd'],
  ['/', '/'],
  ['/.', '/'],
  ['/..', '/'],
];
for (const [input, want] of same) t.same(canonicalAdminPath(input), { ok: true, path: want }, input);

const refused = ['', 'api/v1/audit', 'http://x/api/v1/audit', '*', '/api/v1%2faudit', '/api/v1/%5caudit', '/api\\v1\\audit', '/api/v1/%zz', '/api/v1/a%00', '/api/v1/%25', `/${'a'.repeat(2100)}`];
for (const input of refused) t.equal(canonicalAdminPath(input).ok, false, JSON.stringify(input.slice(0, 40)));
