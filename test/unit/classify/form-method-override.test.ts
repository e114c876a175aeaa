// The POST form body's `_method` scanner (security case 3.05): which bodies are scanned, what
// names count as `_method` (Rack's exact name, PHP's mangled ones, overlong names judged on their
// prefix), values split across chunks, multipart parts, and the refusals for values that are no
// method, cannot be decoded, or run too long.
import t from 'tap';
import { NAME_KEEP, PART_HEADERS_MAX, VALUE_MAX, decodeForm, formOverrideScanner, isFormContentType, nameIsMethod, partNames, type FormOverrideScanner } from '../../../src/classify/form-method-override.ts';

const URLENC = 'application/x-www-form-urlencoded';
const B = 'XyZ';
const MP = `multipart/form-data; boundary=${B}`;

/** Every override (method) the body names, in order, or `malformed: <message start>`. */
function scan(s: FormOverrideScanner, chunks: ReadonlyArray<string | Buffer>): string[] | string {
  const out: string[] = [];
  for (const c of [...chunks.map((x) => (typeof x === 'string' ? Buffer.from(x, 'latin1') : x)), undefined]) {
    const r = c === undefined ? s.end() : s.push(c);
    if (!r.ok) return `malformed: ${r.message}`;
    for (const o of r.overrides) out.push(`${o.method} (${o.source})`);
  }
  return out;
}

function run(contentType: string | undefined, chunks: ReadonlyArray<string | Buffer>): string[] | string {
  const s = formOverrideScanner('POST', contentType);
  if (!s || 'ok' in s) throw new Error(`no scanner for ${String(contentType)}`);
  return scan(s, chunks);
}

const part = (name: string, value: string, headers = '') => `--${B}\r\nContent-Disposition: form-data; name=${name}\r\n${headers}\r\n${value}\r\n`;
const CLOSE = `--${B}--\r\n`;

t.test('which requests get a scanner, and which Content-Types are refused', async (t) => {
  const cases: Array<[string, string, string | undefined, 'scan' | 'none' | 'refuse']> = [
    ['POST urlencoded', 'POST', URLENC, 'scan'],
    ['POST urlencoded with a charset, upper case', 'POST', 'Application/X-WWW-Form-Urlencoded; charset=UTF-8', 'scan'],
    ['POST urlencoded, the type cut at a comma (Rack)', 'POST', `${URLENC}, x`, 'scan'],
    ['POST urlencoded, the type cut at a space (PHP)', 'POST', `${URLENC} x`, 'scan'],
    ['POST without a Content-Type (Rack reads it as a form)', 'POST', undefined, 'scan'],
    ['POST with an empty Content-Type', 'POST', '', 'scan'],
    ['POST multipart with a boundary', 'POST', MP, 'scan'],
    ['POST multipart, quoted boundary after another parameter', 'POST', `multipart/form-data; charset=utf-8; novalue; boundary="${B}"`, 'scan'],
    ['POST multipart, the type cut at a comma', 'POST', `multipart/form-data, boundary=${B}`, 'scan'],
    ['POST multipart/mixed (Rack parses any multipart)', 'POST', `multipart/mixed; boundary=${B}`, 'scan'],
    ['POST multipart without a boundary', 'POST', 'multipart/form-data', 'refuse'],
    ['POST multipart with an empty boundary', 'POST', 'multipart/form-data; boundary=""', 'refuse'],
    ['POST multipart with a 201-byte boundary', 'POST', `multipart/form-data; boundary=${'b'.repeat(201)}`, 'refuse'],
    ['POST multipart with two boundaries (Rack takes the last, PHP the first)', 'POST', 'multipart/form-data; boundary=A; boundary=B', 'refuse'],
    ['POST multipart with a quoted boundary Rack cuts at ";"', 'POST', 'multipart/form-data; boundary="a;b"', 'refuse'],
    ['POST multipart, PHP takes the = after the first "boundary"', 'POST', 'multipart/form-data; boundary_x=Q; boundary=B', 'refuse'],
    ['POST multipart, "boundary" without =', 'POST', 'multipart/form-data; boundary', 'refuse'],
    ['POST multipart with a quote left open (both read ab)', 'POST', 'multipart/form-data; boundary="ab', 'scan'],
    ['POST JSON', 'POST', 'application/json', 'none'],
    ['POST text', 'POST', 'text/plain', 'none'],
    ['PUT urlencoded (only POST is overridden)', 'PUT', URLENC, 'none'],
    ['GET', 'GET', undefined, 'none'],
  ];
  for (const [what, method, type, expected] of cases) {
    const s = formOverrideScanner(method, type);
    t.equal(s === undefined ? 'none' : 'ok' in s ? 'refuse' : 'scan', expected, what);
  }
});

t.test('urlencoded bodies', async (t) => {
  const cases: Array<[string, Array<string | Buffer>, string[] | string]> = [
    ['nothing named', ['a=1&b=2'], []],
    ['an empty body', [], []],
    ['_method=DELETE', ['a=1&_method=DELETE&b=2'], ['DELETE (body _method)']],
    ['last, no trailing &', ['_method=delete'], ['DELETE (body _method)']],
    ['percent-encoded name, + in the value', ['%5Fmethod=+PATCH+'], ['PATCH (body _method)']],
    ['PHP: leading space, "." and "[" stand for "_"', ['+_method=PUT&.method=PATCH&[method=PURGE'], ['PUT (body _method)', 'PATCH (body _method)', 'PURGE (body _method)']],
    ['PHP: _method[x] is _method', ['_method[x]=DELETE'], ['DELETE (body _method)']],
    ['the request\'s own method and empty values name nothing', ['_method=post&_method=&_method'], []],
    ['two methods, each once', ['_method=DELETE&_method=PUT&_method=delete'], ['DELETE (body _method)', 'PUT (body _method)']],
    ['a name without a value', ['flag&_method=PUT'], ['PUT (body _method)']],
    ['names without values only', ['a&b&_method'], []],
    ['similar names are not _method', ['_methods=DELETE&x_method=DELETE&method=DELETE&_method2=DELETE'], []],
    ['a name that cannot be decoded is not _method', ['%E0%A4%A=DELETE&%zz=1'], []],
    ['split inside the name', ['a=1&_me', 'thod=DELETE'], ['DELETE (body _method)']],
    ['split inside an escape of the name', ['%5', 'Fmethod=DELETE'], ['DELETE (body _method)']],
    ['split inside the value', ['_method=DE', 'LE', 'TE&b=1'], ['DELETE (body _method)']],
    ['split right after =', ['_method=', 'DELETE'], ['DELETE (body _method)']],
    ['split between parameters', ['a=1&', '_method=DELETE'], ['DELETE (body _method)']],
    ['a skipped value spanning chunks', ['big=aaaa', 'aaaa', 'aa&_method=PUT'], ['PUT (body _method)']],
    ['a value that is no method', ['_method=DEL%3BETE'], 'malformed: body _method names "DEL;ETE"'],
    ['a value that is no UTF-8', ['_method=%E0%A4%A'], 'malformed: body _method names'],
    ['a value that is no UTF-8, then more', ['_method=%E0%A4%A&b=1'], 'malformed: body _method names'],
    ['PHP ends a name at NUL; Rack 2 drops brackets around it', ['_method%00x=PUT&[_method]=PATCH&_method]=PURGE'], ['PUT (body _method)', 'PATCH (body _method)', 'PURGE (body _method)']],
    [`a value over ${VALUE_MAX} bytes`, [`_method=${'D'.repeat(VALUE_MAX + 1)}`], 'malformed: The request body\'s _method parameter is too long'],
    ['a value over the limit across chunks', ['_method=', 'D'.repeat(VALUE_MAX), 'D'], 'malformed: The request body\'s _method parameter is too long'],
    ['binary data without & or =', [Buffer.alloc(3 * NAME_KEEP, 0x41)], []],
    [`a name over ${NAME_KEEP} bytes that is not _method`, [`${'n'.repeat(NAME_KEEP + 10)}=1&_method=PUT`], ['PUT (body _method)']],
    ['an overlong name not _method, split across chunks', ['n'.repeat(NAME_KEEP - 1), 'n'.repeat(20), '=1&_method=PUT'], ['PUT (body _method)']],
    ['an overlong name that starts as _method[', [`_method[${'k'.repeat(NAME_KEEP)}]=DELETE`], ['DELETE (body _method)']],
    ['an overlong _method[ name across chunks', ['_method[', 'k'.repeat(NAME_KEEP), 'k'.repeat(NAME_KEEP), ']=DELETE'], ['DELETE (body _method)']],
    ['an overlong name of spaces is undecidable', [`${'+'.repeat(NAME_KEEP + 1)}=1`], `malformed: The request body starts a form parameter name with over ${NAME_KEEP} bytes`],
    ['an overlong name of spaces still open at a chunk end', ['+'.repeat(NAME_KEEP + 1)], `malformed: The request body starts a form parameter name with over ${NAME_KEEP} bytes`],
    ['spaces up to the limit, then the start of _method', [`${'+'.repeat(NAME_KEEP - 4)}_method=DELETE`], `malformed: The request body starts a form parameter name with over ${NAME_KEEP} bytes`],
  ];
  for (const [what, chunks, expected] of cases) {
    const got = run(URLENC, chunks);
    if (typeof expected === 'string') t.match(got, new RegExp(`^${expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), what);
    else t.same(got, expected, what);
  }
});

t.test('a scanner stays refused once it has refused', async (t) => {
  const s = formOverrideScanner('POST', URLENC) as FormOverrideScanner;
  t.notOk(s.push(Buffer.from('_method=DEL;ETE&')).ok, 'the bad value');
  t.notOk(s.push(Buffer.from('a=1')).ok, 'the next chunk');
  t.notOk(s.end().ok, 'the end');
});

t.test('overrides are reported once, with the chunk that completes them', async (t) => {
  const s = formOverrideScanner('POST', undefined) as FormOverrideScanner;
  t.same(s.push(Buffer.from('_method=DEL')), { ok: true, overrides: [] }, 'not yet: the value may go on');
  t.same(s.push(Buffer.from('ETE&a=1')), { ok: true, overrides: [{ source: 'body _method', method: 'DELETE' }] }, 'the chunk that ends the value');
  t.same(s.end(), { ok: true, overrides: [] }, 'nothing more at the end');
});

t.test('nameIsMethod on whole names and overlong prefixes', async (t) => {
  const cases: Array<[string, boolean, boolean | undefined]> = [
    ['_method', true, true],
    ['%5fMETHOD', true, true],
    ['_method%00x', true, true],
    ['[_method]', true, true],
    ['_method]', true, true],
    ['_method[x]', true, true],
    ['_methods', true, false],
    ['%E0%A4%A', true, false],
    ['_method', false, true], // the name goes on: `_method[…` or `_method` and a NUL
    ['_method[', false, true],
    ['++_methodx', false, true],
    ['[[_method', false, true],
    ['_method%5', false, true],
    ['%E0%A4%A_method', false, false],
    ['++++', false, undefined],
    ['++_meth', false, undefined],
    ['x_method', false, false],
  ];
  for (const [raw, whole, expected] of cases) t.equal(nameIsMethod(raw, whole), expected, `${raw} (${whole ? 'whole' : 'prefix'})`);
});

t.test('partNames reads a header block as loosely as Rack and PHP', async (t) => {
  const cases: Array<[string, string]> = [
    ['an unclosed quote (PHP)', 'Content-Disposition: form-data; name="_method'],
    ['a token cut at "," (Rack)', 'Content-Disposition: form-data; name=_method,x'],
    ['a name= inside another quoted value (Rack takes it)', 'Content-Disposition: form-data; name="a; name=_method"'],
    ['right after a quoted value (Rack 3.1)', 'Content-Disposition: form-data; a="x"name=_method'],
    ['no space after the colon (PHP)', 'Content-Disposition:name=_method'],
    ['a name broken over two lines (PHP joins them)', 'Content-Disposition: form-data; na\r\nme=_method'],
    ['X-Content-ID (Rack does not anchor it)', 'X-Content-ID: _method'],
  ];
  for (const [what, block] of cases) t.ok(partNames(block).includes('_method'), what);
  t.notOk(partNames('Content-Disposition: form-data; filename="_method"').includes('_method'), 'a filename is not a name');
  t.same(partNames('Content-Disposition: form-data; name=; x'), ['', '', '', ''], 'an empty bare name (read twice: as is, and with line breaks removed)');
});

t.test('decodeForm never throws', async (t) => {
  t.equal(decodeForm('a+b%41%zz%'), 'a bA%zz%');
  t.equal(decodeForm('plain'), 'plain');
});

t.test('multipart bodies', async (t) => {
  const cases: Array<[string, Array<string | Buffer>, string[] | string]> = [
    ['nothing named', [part('"a"', '1') + part('"b"', '2') + CLOSE], []],
    ['a _method part', [part('"a"', '1') + part('"_method"', 'DELETE') + CLOSE], ['DELETE (body _method)']],
    ['unquoted name, other headers first', [`--${B}\r\nContent-Type: text/plain\r\ncontent-disposition: form-data; name=_method\r\n\r\nPUT\r\n${CLOSE}`], ['PUT (body _method)']],
    ['quoted name with an escape', [part('"_meth\\od"', 'PATCH') + CLOSE], ['PATCH (body _method)']],
    ['PHP mangling: ".method"', [part('".method"', 'DELETE') + CLOSE], ['DELETE (body _method)']],
    ['PHP drops leading spaces: " method" is "method"', [part('" method"', 'DELETE') + CLOSE], []],
    ['a filename does not hide the name', [`--${B}\r\nContent-Disposition: form-data; filename="x.txt"; name="_method"\r\n\r\nDELETE\r\n${CLOSE}`], ['DELETE (body _method)']],
    ['a part without Content-Disposition', [`--${B}\r\nX-A: b\r\n\r\nDELETE\r\n${CLOSE}`], []],
    ['a part without headers', [`--${B}\r\n\r\nDELETE\r\n${CLOSE}`], []],
    ['LF line ends (PHP reads them; Rack does not) are refused', [`--${B}\nContent-Disposition: form-data; name="_method"\n\nDELETE\n--${B}--\n`], 'malformed: A part of the request\'s multipart body ends its headers with a bare LF blank line'],
    ['an LF blank line before the CRLF one is refused', [`--${B}\r\nContent-Disposition: form-data; name="a"\r\n\nX: y\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n${CLOSE}`], 'malformed: A part of the request\'s multipart body ends its headers with a bare LF blank line'],
    ['the last name= counts (Rack), the first too (PHP)', [part('"a"; name="_method"', 'PUT') + part('"_method"; name="b"', 'PATCH') + CLOSE], ['PUT (body _method)', 'PATCH (body _method)']],
    ['X-Content-Disposition, single quotes, name*=', [`--${B}\r\nX-Content-Disposition: form-data; name='_method'\r\n\r\nPUT\r\n--${B}\r\nContent-Disposition: form-data; name*=UTF-8''%5Fmethod\r\n\r\nPATCH\r\n${CLOSE}`], ['PUT (body _method)', 'PATCH (body _method)']],
    ['a Content-ID of _method (Rack falls back to it)', [`--${B}\r\nContent-ID: <_method>\r\n\r\nDELETE\r\n${CLOSE}`], ['DELETE (body _method)']],
    ['a NUL in the name (PHP ends it there)', [part('"_method\u0000.x"', 'PUT') + CLOSE], ['PUT (body _method)']],
    ['a preamble, an epilogue', [`preamble\r\n${part('"_method"', 'PUT')}${CLOSE}epilogue --${B} more`], ['PUT (body _method)']],
    ['split inside the delimiter', [`${part('"_method"', 'DELETE')}--`, `${B}--\r\n`], ['DELETE (body _method)']],
    ['split inside the first delimiter', ['--X', `yZ\r\nContent-Disposition: form-data; name="_method"\r\n\r\nPUT\r\n${CLOSE}`], ['PUT (body _method)']],
    ['split inside the headers', [`--${B}\r\nContent-Disposition: form-da`, `ta; name="_method"\r`, `\n\r\nDELETE\r\n${CLOSE}`], ['DELETE (body _method)']],
    ['split inside the value', [`--${B}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDE`, `LETE\r\n${CLOSE}`], ['DELETE (body _method)']],
    ['split between "-" and "-" of the closing delimiter, a part after it', [`${part('"a"', '1')}--${B}-`, `-\r\n${part('"_method"', 'PUT')}`], ['PUT (body _method)']],
    ['parts after the closing delimiter are read (PHP reads on)', [part('"a"', '1') + CLOSE, part('"_method"', 'PUT')], ['PUT (body _method)']],
    ['a closing delimiter with text after it', [`${part('"a"', '1')}--${B}--x\r\n${part('"_method"', 'PATCH')}`], ['PATCH (body _method)']],
    ['a value that is no method', [part('"_method"', 'DEL;ETE') + CLOSE], 'malformed: body _method names "DEL;ETE"'],
    [`a value over ${VALUE_MAX} bytes`, [part('"_method"', 'D'.repeat(VALUE_MAX + 1)) + CLOSE], 'malformed: The request body\'s _method parameter is too long'],
    ['a large file part, then _method', [part('"file"', 'z'.repeat(50_000)), part('"_method"', 'DELETE') + CLOSE], ['DELETE (body _method)']],
    [`a header block over ${PART_HEADERS_MAX} bytes`, [`--${B}\r\nX-Pad: ${'p'.repeat(PART_HEADERS_MAX)}`, 'more'], `malformed: A part of the request's multipart body has a header block over ${PART_HEADERS_MAX} bytes`],
    ['a body cut inside the _method value: what arrived counts', [`--${B}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE`], ['DELETE (body _method)']],
    ['a body cut after the value and its line end', [`--${B}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nPUT\r\n`], ['PUT (body _method)']],
    ['a body cut inside an overlong open value', [`--${B}\r\nContent-Disposition: form-data; name="_method"\r\n\r\n${'D'.repeat(VALUE_MAX - 5)}`, 'DDDDDDDDDDDD'], 'malformed: The request body\'s _method parameter is too long'],
    ['no delimiter at all', ['just some bytes'], []],
    ['an empty header block, then a _method part', [`--${B}\r\n\r\n--${B}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n${CLOSE}`], ['DELETE (body _method)']],
    ['a bare-LF blank line with no CRLF pair at all', [`--${B}\n\n--${B}\nContent-Disposition: form-data; name="_method"\n\nDELETE\n--${B}--\n`], 'malformed: A part of the request\'s multipart body ends its headers with a bare LF blank line'],
    ['a delimiter line with white space before it (Rack 2)', [`${part('"a"', `1\r\n --${B}\r\n`)}`.replace(`\r\n--${B}`, '') + ` --${B}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n${CLOSE}`], ['DELETE (body _method)']],
    ['headers sent a byte at a time', [...`--${B}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nPUT\r\n${CLOSE}`], ['PUT (body _method)']],
    ['a cut value that the held-back tail takes over the limit', [`--${B}\r\nContent-Disposition: form-data; name="_method"\r\n\r\n${'D'.repeat(VALUE_MAX + 3)}`], 'malformed: The request body\'s _method parameter is too long'],
  ];
  for (const [what, chunks, expected] of cases) {
    const got = run(MP, chunks);
    if (typeof expected === 'string') t.match(got, new RegExp(`^${expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), what);
    else t.same(got, expected, what);
  }
});

t.test('isFormContentType: the types formOverrideScanner reads as a form (a second Content-Type of these is refused)', async (t) => {
  const cases: Array<[string, boolean]> = [
    ['', true], ['  ', true], ['application/x-www-form-urlencoded', true], ['Application/X-WWW-Form-Urlencoded; charset=utf-8', true],
    ['multipart/form-data; boundary=x', true], ['multipart/mixed', true], ['application/json', false], ['text/plain, multipart/form-data', false],
  ];
  for (const [ct, form] of cases) {
    t.equal(isFormContentType(ct), form, JSON.stringify(ct));
    t.equal(formOverrideScanner('POST', ct) !== undefined, form, `${JSON.stringify(ct)}: the scanner agrees`);
  }
});
