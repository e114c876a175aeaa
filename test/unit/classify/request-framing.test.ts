// checkRequestFraming: the RFC 9112 framing checks made on a request head before forwarding,
// driven from tables of raw header pairs. Refusals are asserted on their reason code; the
// message is matched only loosely, to show which check fired.
import t from 'tap';
import { asciiLower, checkRequestFraming, type FramingVerdict } from '../../../src/classify/request-framing.ts';

t.test('asciiLower folds A-Z only', async (t) => {
  const cases: [string, string][] = [
    ['', ''],
    ['Content-Length', 'content-length'],
    ['ABCXYZ@[`{', 'abcxyz@[`{'],
    ['\u212Aey', '\u212Aey'], // KELVIN SIGN is not folded into "k"
    ['ÄÖ', 'ÄÖ'],
    ['\u212Aeep-Alive', '\u212Aeep-alive'], // non-ASCII text: A-Z still folded, the look-alike kept
    ['\u0130D', '\u0130d'], // LATIN CAPITAL I WITH DOT ABOVE is not folded into "i̇"
  ];
  for (const [input, want] of cases) t.equal(asciiLower(input), want, JSON.stringify(input));
});

t.test('accepted heads', async (t) => {
  const cases: { why: string; raw: string[]; version: string; want: FramingVerdict }[] = [
    { why: 'plain GET', raw: ['Host', 'api.example.com'], version: '1.1', want: { ok: true, host: 'api.example.com', contentLength: undefined, chunked: false, expectContinue: false } },
    { why: 'host is trimmed', raw: ['HOST', '  api.example.com\t'], version: '1.1', want: { ok: true, host: 'api.example.com', contentLength: undefined, chunked: false, expectContinue: false } },
    { why: 'content-length', raw: ['Host', 'h', 'Content-Length', ' 42 '], version: '1.1', want: { ok: true, host: 'h', contentLength: 42, chunked: false, expectContinue: false } },
    { why: 'chunked, any case', raw: ['Host', 'h', 'Transfer-Encoding', 'CHUNKED'], version: '1.1', want: { ok: true, host: 'h', contentLength: undefined, chunked: true, expectContinue: false } },
    { why: 'expect 100-continue', raw: ['Host', 'h', 'Expect', '100-Continue', 'Content-Length', '0'], version: '1.1', want: { ok: true, host: 'h', contentLength: 0, chunked: false, expectContinue: true } },
    { why: 'HTTP/1.0 needs no Host', raw: ['Accept', '*/*'], version: '1.0', want: { ok: true, host: undefined, contentLength: undefined, chunked: false, expectContinue: false } },
    { why: 'other headers pass through', raw: ['Host', 'h', 'X-Thing', 'a\tb c~'], version: '1.1', want: { ok: true, host: 'h', contentLength: undefined, chunked: false, expectContinue: false } },
    { why: 'a dangling name without value is ignored', raw: ['Host', 'h', 'X-Dangling'], version: '1.1', want: { ok: true, host: 'h', contentLength: undefined, chunked: false, expectContinue: false } },
  ];
  for (const c of cases) t.same(checkRequestFraming(c.raw, c.version), c.want, c.why);
});

t.test('refused heads', async (t) => {
  const cases: { why: string; raw: string[]; version?: string; reason: string; message: RegExp }[] = [
    { why: 'control character in a value', raw: ['Host', 'h', 'X-A', 'a\r\nb'], reason: 'malformed_request', message: /x-a contains a control/ },
    { why: 'non-ASCII value', raw: ['Host', 'h\u00e9'], reason: 'malformed_request', message: /host contains/ },
    { why: 'content-length not a number', raw: ['Host', 'h', 'Content-Length', '1e3'], reason: 'malformed_request', message: /not a decimal/ },
    { why: 'content-length negative', raw: ['Host', 'h', 'Content-Length', '-1'], reason: 'malformed_request', message: /not a decimal/ },
    { why: 'content-length too long', raw: ['Host', 'h', 'Content-Length', '1234567890123456'], reason: 'malformed_request', message: /not a decimal/ },
    { why: 'content-length list', raw: ['Host', 'h', 'Content-Length', '5, 5'], reason: 'malformed_request', message: /not a decimal/ },
    { why: 'transfer-encoding gzip', raw: ['Host', 'h', 'Transfer-Encoding', 'gzip, chunked'], reason: 'malformed_request', message: /only "Transfer-Encoding: chunked"/ },
    { why: 'expect other', raw: ['Host', 'h', 'Expect', 'something'], reason: 'expectation_failed', message: /100-continue/ },
    { why: 'two content-lengths', raw: ['Host', 'h', 'Content-Length', '1', 'content-length', '1'], reason: 'malformed_request', message: /more than one Content-Length/ },
    { why: 'two transfer-encodings', raw: ['Host', 'h', 'Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'chunked'], reason: 'malformed_request', message: /more than one Transfer-Encoding/ },
    { why: 'CL and TE', raw: ['Host', 'h', 'Content-Length', '1', 'Transfer-Encoding', 'chunked'], reason: 'malformed_request', message: /both/ },
    { why: 'two hosts', raw: ['Host', 'a', 'Host', 'b'], reason: 'malformed_request', message: /more than one Host/ },
    { why: 'HTTP/1.1 without host', raw: ['Accept', '*/*'], reason: 'malformed_request', message: /without a Host/ },
    { why: 'empty host', raw: ['Host', '   '], reason: 'malformed_request', message: /empty Host/ },
    { why: 'empty host on 1.0', raw: ['Host', ''], version: '1.0', reason: 'malformed_request', message: /empty Host/ },
    { why: 'HTTP/2.0', raw: ['Host', 'h'], version: '2.0', reason: 'malformed_request', message: /HTTP\/2\.0 is not supported/ },
    { why: 'HTTP/0.9 without host', raw: [], version: '0.9', reason: 'malformed_request', message: /HTTP\/0\.9/ },
    { why: 'chunked on 1.0', raw: ['Transfer-Encoding', 'chunked'], version: '1.0', reason: 'malformed_request', message: /HTTP\/1\.0/ },
  ];
  for (const c of cases) {
    const v = checkRequestFraming(c.raw, c.version ?? '1.1');
    t.equal(v.ok, false, c.why);
    if (v.ok) continue;
    t.equal(v.reason, c.reason, c.why);
    t.match(v.message, c.message, c.why);
  }
});
