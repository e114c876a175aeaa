// peekClientHello: the SNI read from the first TLS record of a pass-through tunnel. ClientHellos
// are built byte by byte here so each table row names the one field it breaks.
import t from 'tap';
import { peekClientHello, type ClientHelloPeek } from '../../../src/classify/tls-client-hello.ts';

const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

/** One server_name entry: name type, 16-bit length, bytes. */
const sniEntry = (type: number, name: string) => [type, ...u16(name.length), ...ascii(name)];
/** The server_name extension (type 0) around a list of entries. */
function sniExtension(entries: number[][]): number[] {
  const list = entries.flat();
  const body = [...u16(list.length), ...list];
  return [...u16(0x0000), ...u16(body.length), ...body];
}
const otherExtension = (type: number, data: number[]) => [...u16(type), ...u16(data.length), ...data];

interface HelloParts { sessionId?: number[]; suites?: number[]; compression?: number[]; extensions?: number[] | null; trailer?: number[] }

/** The handshake body of a ClientHello; `extensions: null` leaves the extensions block out. */
function helloBody(p: HelloParts = {}): number[] {
  const sid = p.sessionId ?? [];
  const suites = p.suites ?? [0x13, 0x01];
  const comp = p.compression ?? [0x00];
  const ext = p.extensions === undefined ? sniExtension([sniEntry(0, 'api.example.com')]) : p.extensions;
  return [
    0x03, 0x03, ...new Array<number>(32).fill(7), // version, random
    sid.length, ...sid,
    ...u16(suites.length), ...suites,
    comp.length, ...comp,
    ...(ext === null ? [] : [...u16(ext.length), ...ext]),
    ...(p.trailer ?? []),
  ];
}
/** A TLS record carrying one handshake message. */
function record(body: number[], handshakeType = 0x01, major = 3): Uint8Array {
  const hs = [handshakeType, 0, ...u16(body.length), ...body];
  return Uint8Array.from([0x16, major, 0x01, ...u16(hs.length), ...hs]);
}
/** A record of raw bytes (no handshake header). */
const rawRecord = (bytes: number[]) => Uint8Array.from([0x16, 3, 1, ...u16(bytes.length), ...bytes]);

t.test('server names read', async (t) => {
  const cases: { why: string; buf: Uint8Array; want: ClientHelloPeek }[] = [
    { why: 'SNI in the only extension', buf: record(helloBody()), want: { kind: 'client_hello', serverName: 'api.example.com' } },
    {
      why: 'SNI after another extension, with a session id and more suites',
      buf: record(helloBody({ sessionId: [1, 2, 3, 4], suites: [0x13, 0x01, 0x13, 0x02], compression: [1, 0], extensions: [...otherExtension(0x000a, [0, 2, 0, 0x1d]), ...sniExtension([sniEntry(0, 'b.example')])] })),
      want: { kind: 'client_hello', serverName: 'b.example' },
    },
    { why: 'a non-host name entry is skipped', buf: record(helloBody({ extensions: sniExtension([sniEntry(7, 'xx'), sniEntry(0, 'c.example')]) })), want: { kind: 'client_hello', serverName: 'c.example' } },
    { why: 'only non-host name entries', buf: record(helloBody({ extensions: sniExtension([sniEntry(7, 'xx')]) })), want: { kind: 'client_hello', serverName: undefined } },
    { why: 'no extensions block at all', buf: record(helloBody({ extensions: null })), want: { kind: 'client_hello', serverName: undefined } },
    { why: 'extensions without SNI', buf: record(helloBody({ extensions: otherExtension(0x002b, [2, 3, 4]) })), want: { kind: 'client_hello', serverName: undefined } },
    { why: 'empty extensions block', buf: record(helloBody({ extensions: [] })), want: { kind: 'client_hello', serverName: undefined } },
    { why: 'bytes after the record are ignored', buf: Uint8Array.from([...record(helloBody()), 0x17, 0x03]), want: { kind: 'client_hello', serverName: 'api.example.com' } },
  ];
  for (const c of cases) t.same(peekClientHello(c.buf), c.want, c.why);
});

t.test('incomplete: asks for more bytes', async (t) => {
  const full = record(helloBody());
  const cases: [string, Uint8Array][] = [
    ['nothing yet', new Uint8Array(0)],
    ['record type only', full.subarray(0, 1)],
    ['record header cut', full.subarray(0, 4)],
    ['record body cut', full.subarray(0, full.length - 1)],
  ];
  for (const [why, buf] of cases) t.same(peekClientHello(buf), { kind: 'incomplete' }, why);
});

t.test('not TLS, or a ClientHello that does not parse', async (t) => {
  const notTls = { kind: 'not_tls' };
  const cases: [string, Uint8Array][] = [
    ['plain HTTP', Uint8Array.from(ascii('GET / HTTP/1.1\r\n'))],
    ['record too long', Uint8Array.from([0x16, 3, 1, ...u16(16_384 + 2049)])],
    ['wrong major version', record(helloBody(), 0x01, 2)],
    ['not a client_hello', record(helloBody(), 0x02)],
    ['handshake header cut', rawRecord([0x01, 0, 0])],
    ['random cut', rawRecord([0x01, 0, 0, 10, 3, 3, 1, 2])],
    ['session id longer than the record', rawRecord([0x01, 0, 0, 0, ...new Array<number>(34).fill(0), 32, 1])],
    ['cipher suites longer than the record', rawRecord([0x01, 0, 0, 0, ...new Array<number>(34).fill(0), 0, ...u16(100), 0x13])],
    ['compression longer than the record', rawRecord([0x01, 0, 0, 0, ...new Array<number>(34).fill(0), 0, ...u16(2), 0x13, 0x01, 5, 0])],
    ['extensions block longer than the record', record(helloBody({ extensions: sniExtension([sniEntry(0, 'a.example')]) }).slice(0, -1))],
    ['an extension longer than the block', record(helloBody({ extensions: [...u16(0x000a), ...u16(40), 1, 2] }))],
    ['a server name longer than the extension', record(helloBody({ extensions: [...u16(0), ...u16(7), ...u16(5), 0, ...u16(30), 0x61, 0x62] }))],
  ];
  for (const [why, buf] of cases) t.same(peekClientHello(buf), notTls, why);
});
