// Test-only authoritative DNS server on loopback (UDP): answers A and AAAA from a table that the
// test controls per name (and per query, for rebinding), logs every query, NXDOMAIN otherwise.
import dgram from 'node:dgram';
import net from 'node:net';

type OneAnswer = string[] | ((queryNumber: number) => string[]) | 'servfail' | 'timeout';
/** One answer for every query type, or one per type (a type left out gets an empty NOERROR answer). */
export type DnsAnswer = OneAnswer | { A?: OneAnswer; AAAA?: OneAnswer };

export interface TestDns {
  port: number;
  /** name (lower case, no trailing dot) → addresses */
  records: Map<string, DnsAnswer>;
  queries: Array<{ name: string; type: number }>;
  close(): Promise<void>;
}

function readName(buf: Buffer, at: number): { name: string; end: number } {
  const labels: string[] = [];
  let p = at;
  while (p < buf.length) {
    const len = buf[p] as number;
    if (len === 0) return { name: labels.join('.'), end: p + 1 };
    labels.push(buf.subarray(p + 1, p + 1 + len).toString('latin1'));
    p += 1 + len;
  }
  return { name: labels.join('.'), end: p };
}

export async function startTestDns(ttl = 0): Promise<TestDns> {
  const sock = dgram.createSocket('udp4');
  const records = new Map<string, DnsAnswer>();
  const queries: TestDns['queries'] = [];
  const counts = new Map<string, number>();
  sock.on('message', (msg, rinfo) => {
    if (msg.length < 12) return;
    const { name, end } = readName(msg, 12);
    const qtype = msg.readUInt16BE(end);
    const lower = name.toLowerCase();
    queries.push({ name: lower, type: qtype });
    const named = records.get(lower);
    const entry: OneAnswer | undefined = named === undefined || Array.isArray(named) || typeof named !== 'object'
      ? named
      : (qtype === 1 ? named.A : qtype === 28 ? named.AAAA : undefined) ?? [];
    if (entry === 'timeout') return;
    const header = Buffer.from(msg.subarray(0, 12));
    header.writeUInt16BE(0x8180, 2); // response, recursion desired+available, NOERROR
    const question = msg.subarray(12, end + 4);
    const answers: Buffer[] = [];
    if (entry === undefined) header.writeUInt16BE(0x8183, 2); // NXDOMAIN
    else if (entry === 'servfail') header.writeUInt16BE(0x8182, 2);
    else {
      const n = (counts.get(`${lower}/${qtype}`) ?? 0) + 1;
      counts.set(`${lower}/${qtype}`, n);
      const list = typeof entry === 'function' ? entry(n) : entry;
      for (const addr of list) {
        const family = net.isIP(addr);
        if ((family === 4 && qtype !== 1) || (family === 6 && qtype !== 28) || family === 0) continue;
        const rdata = family === 4 ? Buffer.from(addr.split('.').map(Number)) : ipv6Bytes(addr);
        const rr = Buffer.alloc(12);
        rr.writeUInt16BE(0xc00c, 0); // pointer to the question name
        rr.writeUInt16BE(qtype, 2);
        rr.writeUInt16BE(1, 4);
        rr.writeUInt32BE(ttl, 6);
        rr.writeUInt16BE(rdata.length, 10);
        answers.push(rr, rdata);
      }
    }
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length / 2, 6);
    header.writeUInt16BE(0, 8);
    header.writeUInt16BE(0, 10);
    sock.send(Buffer.concat([header, question, ...answers]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return {
    port: sock.address().port,
    records,
    queries,
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}

function ipv6Bytes(addr: string): Buffer {
  const [head, tail] = addr.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g || '0', 16), i * 2));
  return out;
}
