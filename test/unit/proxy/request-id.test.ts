// Request ids: UUIDv7 text (RFC 9562) — the time in its first 48 bits, version 7, variant 10 —
// ordered by time across milliseconds, unique within one.
import t from 'tap';
import { formatUuidV7, newRequestId } from '../../../src/proxy/request-id.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

t.test('layout: time, version, variant and the random bits, byte by byte', async (t) => {
  const rows: Array<{ ms: number; bytes: number[]; want: string }> = [
    // RFC 9562 appendix A.6: 2022-02-22 19:22:22 UTC = 0x017F22E279B0
    { ms: 0x017f22e279b0, bytes: [0x0c, 0xc3, 0x18, 0xc4, 0xdc, 0x0c, 0x0c, 0x07, 0x39, 0x8f], want: '017f22e2-79b0-7cc3-98c4-dc0c0c07398f' },
    { ms: 0, bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], want: '00000000-0000-7000-8000-000000000000' },
    { ms: 0xffffffffffff, bytes: Array(10).fill(0xff) as number[], want: 'ffffffff-ffff-7fff-bfff-ffffffffffff' },
    { ms: -5, bytes: Array(10).fill(0x11) as number[], want: '00000000-0000-7111-9111-111111111111' },
  ];
  for (const r of rows) {
    const got = formatUuidV7(r.ms, Uint8Array.from([9, ...r.bytes]), 1);
    t.equal(got, r.want, `${r.ms}`);
    t.match(got, UUID_V7);
  }
});

t.test('ids sort by time and never repeat', async (t) => {
  const at = Date.parse('2026-11-26T10:00:00Z');
  const ids = Array.from({ length: 3000 }, (_, i) => newRequestId(at + Math.floor(i / 100)));
  t.ok(ids.every((id) => UUID_V7.test(id)), 'every one is UUIDv7 text');
  t.equal(new Set(ids).size, ids.length, 'unique (the pool is refilled: 3000 > 256 ids per fill)');
  for (let i = 100; i < ids.length; i += 100) t.ok((ids[i - 1] as string) < (ids[i] as string), `a later millisecond sorts after (${i})`);
  t.equal(newRequestId(at).slice(0, 13), formatUuidV7(at, new Uint8Array(10), 0).slice(0, 13), 'the first 48 bits are the time');
  t.match(newRequestId(), UUID_V7, 'now by default');
});
