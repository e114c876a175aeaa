// parseAdminJson / isCount: prototype keys and non-finite numbers never reach a handler (9.04, 6.14).
import t from 'tap';
import { isCount, parseAdminJson } from '../../../src/admin/parse-admin-json.ts';

t.same(parseAdminJson('{"id":"tok_1","n":[1,2]}'), { ok: true, value: { id: 'tok_1', n: [1, 2] } });
const refusals: Array<[string, string]> = [
  ['{"__proto__":{"admin":true}}', 'json_forbidden_key'],
  ['{"a":{"constructor":{"prototype":{"x":1}}}}', 'json_forbidden_key'],
  ['[{"prototype":1}]', 'json_forbidden_key'],
  ['{"limit":1e999}', 'json_number_invalid'],
  ['{"limit":-1e999}', 'json_number_invalid'],
  ['{"limit":', 'json_invalid'],
  ['NaN', 'json_invalid'],
  ['', 'json_invalid'],
];
for (const [text, code] of refusals) t.match(parseAdminJson(text), { ok: false, code }, text);
t.equal(({} as Record<string, unknown>)['admin'], undefined, 'nothing leaked onto Object.prototype');

const counts: Array<[unknown, boolean]> = [
  [0, true], [100, true], [Number.MAX_SAFE_INTEGER, true],
  [-1, false], [-0, false], [1.5, false], [1e308, false], [Infinity, false], [NaN, false], ['100', false], [null, false],
];
for (const [v, want] of counts) t.equal(isCount(v), want, String(v));
