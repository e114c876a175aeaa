// duplicateMemberName: a member named twice in one object, at any depth, names compared unescaped;
// the same name in different objects, strings that look like names, and malformed JSON are not.
import t from 'tap';
import { duplicateMemberName } from '../../../src/identity/oidc/json-duplicates.ts';

const cases: Array<[string, string, string | undefined]> = [
  ['none', '{"a":1,"b":2}', undefined],
  ['top level', '{"alg":"none","kid":"k","alg":"RS256"}', 'alg'],
  ['unescaped equal', '{"sub":"a","\\u0073ub":"admin"}', 'sub'],
  ['nested object', '{"a":{"x":1,"x":2}}', 'x'],
  ['same name in sibling objects', '{"a":{"x":1},"b":{"x":2}}', undefined],
  ['objects in an array', '[{"x":1},{"x":2}]', undefined],
  ['duplicate inside an array element', '[{"x":1,"x":2}]', 'x'],
  ['a value that equals a name', '{"a":"a","b":"a"}', undefined],
  ['escaped quote in a value', '{"a":"say \\"a\\"","b":1}', undefined],
  ['array values between members', '{"aud":["a","b"],"aud":"c"}', 'aud'],
  ['whitespace', '{ "a" : 1 , "a" : 2 }', 'a'],
  ['unterminated string', '{"a', undefined],
  ['bad escape in a name', '{"\\x":1}', undefined],
  ['empty', '', undefined],
  ['stray close', '}{"a":1,"b":2}', undefined],
];
for (const [why, json, want] of cases) t.equal(duplicateMemberName(json), want, why);
