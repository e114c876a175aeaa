// Security case 3.05: the methods a request names in override headers or a `_method` parameter.
import t from 'tap';
import { readMethodOverrides } from '../../../src/classify/method-override.ts';

type H = Array<[string, string]>;

t.test('overrides read from headers and the query, upper-cased, distinct, without the own method', async (t) => {
  const cases: Array<[string, string, H, string, Array<[string, string]>]> = [
    ['no override', 'POST', [['Content-Type', 'application/json']], '', []],
    ['query without _method', 'POST', [], 'a=1&b=2', []],
    ['X-HTTP-Method-Override', 'POST', [['X-HTTP-Method-Override', 'DELETE']], '', [['X-HTTP-Method-Override', 'DELETE']]],
    ['X-HTTP-Method', 'POST', [['x-http-method', 'DELETE']], '', [['x-http-method', 'DELETE']]],
    ['X-Method-Override', 'POST', [['X-METHOD-OVERRIDE', 'put']], '', [['X-METHOD-OVERRIDE', 'PUT']]],
    ['lower-case value is the same method', 'POST', [['X-HTTP-Method-Override', 'delete']], '', [['X-HTTP-Method-Override', 'DELETE']]],
    ['the own method is no override', 'POST', [['X-HTTP-Method-Override', 'post']], '', []],
    ['empty value names nothing', 'POST', [['X-HTTP-Method-Override', '  ']], '', []],
    ['comma list names each', 'POST', [['X-HTTP-Method-Override', 'PATCH, DELETE']], '', [['X-HTTP-Method-Override', 'PATCH'], ['X-HTTP-Method-Override', 'DELETE']]],
    ['repeated header, one method once', 'POST', [['X-HTTP-Method-Override', 'DELETE'], ['X-Method-Override', 'DELETE']], '', [['X-HTTP-Method-Override', 'DELETE']]],
    ['headers of other lengths are not read', 'POST', [['X-HTTP-Method-Overrides', 'DELETE'], ['X-Method', 'DELETE']], '', []],
    ['?_method=DELETE', 'POST', [], '_method=DELETE', [['?_method', 'DELETE']]],
    ['?_method=delete among others', 'POST', [], 'a=1&_method=delete&b', [['?_method', 'DELETE']]],
    ['percent-encoded name', 'POST', [], '%5Fmethod=DELETE', [['?_method', 'DELETE']]],
    ['upper-case name', 'POST', [], '_METHOD=PUT', [['?_method', 'PUT']]],
    ['encoded value with + and spaces', 'POST', [], '_method=+DELETE%20', [['?_method', 'DELETE']]],
    ['a name without a value names nothing', 'GET', [], '_method', []],
    ['_method_x is another parameter', 'POST', [], '_method_x=DELETE', []],
    ['method (no underscore) is another parameter', 'POST', [], 'method=DELETE', []],
    ['PHP files .method under _method', 'POST', [], '.method=DELETE', [['?_method', 'DELETE']]],
    ['and %2Emethod', 'POST', [], '%2Emethod=DELETE', [['?_method', 'DELETE']]],
    ['a leading space is dropped, not turned into _', 'POST', [], '+method=DELETE', []],
    ['and leading spaces before _method', 'POST', [], '%20%20_method=PUT', [['?_method', 'PUT']]],
    ['and an unmatched [', 'POST', [], '[method=DELETE', [['?_method', 'DELETE']]],
    ['and _method[key] as an array under _method', 'POST', [], '_method[0]=DELETE', [['?_method', 'DELETE']]],
    ['[x]method: a matched bracket at the start is kept', 'POST', [], '[x]method=DELETE', []],
    ['an undecodable other parameter is the upstream\'s business', 'POST', [], 'q=%zz&_method=PUT', [['?_method', 'PUT']]],
    ['an undecodable name is not _method', 'POST', [], '_method%zz=DELETE', []],
    ['header and query together', 'GET', [['X-HTTP-Method', 'PUT']], '_method=DELETE', [['X-HTTP-Method', 'PUT'], ['?_method', 'DELETE']]],
    ['the own method is compared without case', 'get', [['X-HTTP-Method', 'GET']], '', []],
  ];
  for (const [name, method, headers, query, want] of cases) {
    const r = readMethodOverrides(method, headers, query);
    t.same(r, { ok: true, overrides: want.map(([source, m]) => ({ source, method: m })) }, name);
  }
});

t.test('a value that is no method, or an undecodable _method, is malformed', async (t) => {
  const cases: Array<[string, H, string, RegExp]> = [
    ['space inside', [['X-HTTP-Method-Override', 'DEL ETE']], '', /X-HTTP-Method-Override names "DEL ETE", which is not an HTTP method; the upstream would apply it instead of POST/],
    ['separator', [['X-HTTP-Method', 'GET;DELETE']], '', /x?X-HTTP-Method names "GET;DELETE"/i],
    ['too long', [['X-Method-Override', 'A'.repeat(33)]], '', /not an HTTP method/],
    ['control byte from the query', [], '_method=DEL%0D%0AETE', /\?_method names "DEL\\r\\nETE"/],
    ['undecodable _method value', [], '_method=%E0%A4%A', /_method query parameter cannot be decoded/],
  ];
  for (const [name, headers, query, message] of cases) {
    const r = readMethodOverrides('POST', headers, query);
    t.match(r, { ok: false, reason: 'malformed_request', message }, name);
  }
});
