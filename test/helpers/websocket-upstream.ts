// Test-only: a tiny raw WebSocket origin (plain TCP or TLS) that records every byte it receives,
// answers an upgrade with 101 (or 403 for the path /deny) and echoes each frame back unmasked;
// plus the client-side frame helpers. Raw sockets only, so nothing "fixes" the bytes.
import { createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function websocketAccept(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** A masked client frame (FIN, opcode 1 = text by default), payload < 64 KiB. */
export function clientFrame(payload: string | Buffer, opcode = 1): Buffer {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const head = data.length < 126 ? Buffer.from([0x80 | opcode, 0x80 | data.length]) : Buffer.from([0x80 | opcode, 0x80 | 126, data.length >> 8, data.length & 0xff]);
  const body = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) body[i] = (data[i] as number) ^ (mask[i % 4] as number);
  return Buffer.concat([head, mask, body]);
}

/** Parses one frame at the start of `buf`: its opcode, unmasked payload and total length; undefined if incomplete. */
export function parseFrame(buf: Buffer): { opcode: number; masked: boolean; payload: Buffer; length: number } | undefined {
  if (buf.length < 2) return undefined;
  const opcode = (buf[0] as number) & 0x0f;
  const masked = ((buf[1] as number) & 0x80) !== 0;
  let len = (buf[1] as number) & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    const big = buf.readBigUInt64BE(2);
    if (big > 1_000_000n) throw new Error('frame too large for the test helper');
    len = Number(big);
    off = 10;
  }
  const maskKey = masked ? buf.subarray(off, off + 4) : undefined;
  if (masked) off += 4;
  if (buf.length < off + len) return undefined;
  const payload = Buffer.from(buf.subarray(off, off + len));
  if (maskKey) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (maskKey[i % 4] as number);
  return { opcode, masked, payload, length: off + len };
}

function serverFrame(payload: Buffer, opcode: number): Buffer {
  const head = payload.length < 126 ? Buffer.from([0x80 | opcode, payload.length]) : Buffer.from([0x80 | opcode, 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([head, payload]);
}

export interface WebSocketUpstream {
  port: number;
  /** Accepted TCP connections (TLS: completed handshakes). */
  connections: number;
  /** Every request head received (text before the blank line). */
  heads: string[];
  /** Every payload received in a frame, unmasked. */
  messages: string[];
  /** Everything received, raw, for "this never arrived" checks. */
  received(): string;
  close(): Promise<void>;
}

export async function startWebSocketUpstream(opts: { tls?: { certPem: string; keyPem: string } } = {}): Promise<WebSocketUpstream> {
  const raw: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const up: WebSocketUpstream = {
    port: 0, connections: 0, heads: [], messages: [],
    received: () => Buffer.concat(raw).toString('latin1'),
    close: async () => undefined,
  };
  const onConnection = (sock: net.Socket) => {
    up.connections++;
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let upgraded = false;
    sock.on('data', (c: Buffer) => {
      raw.push(c);
      buf = Buffer.concat([buf, c]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.subarray(0, end).toString('latin1');
        up.heads.push(head);
        buf = buf.subarray(end + 4);
        const target = head.split(' ')[1] ?? '';
        const key = /\r\nsec-websocket-key:[ \t]*([^\r\n]+)/i.exec(head)?.[1]?.trim();
        if (target === '/deny' || key === undefined || !/\r\nupgrade:[ \t]*websocket/i.test(head)) {
          sock.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\ndenied');
          return;
        }
        sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${websocketAccept(key)}\r\n\r\n`);
        upgraded = true;
      }
      for (let guard = 0; guard < 1000; guard++) {
        const f = parseFrame(buf);
        if (!f) break;
        buf = buf.subarray(f.length);
        if (f.opcode === 8) { sock.end(serverFrame(f.payload, 8)); return; }
        up.messages.push(f.payload.toString('utf8'));
        sock.write(serverFrame(f.payload, f.opcode));
      }
    });
  };
  const server = opts.tls
    ? tls.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem, ALPNProtocols: ['http/1.1'] }, onConnection)
    : net.createServer(onConnection);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  up.port = (server.address() as net.AddressInfo).port;
  up.close = () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); });
  return up;
}
