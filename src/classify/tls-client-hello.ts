// Owns: reading the server name (SNI) from the first TLS record of a connection, so a
// pass-through tunnel can check it against the CONNECT authority without terminating TLS. Pure.

export type ClientHelloPeek =
  | { kind: 'incomplete' }
  | { kind: 'not_tls' }
  | { kind: 'client_hello'; serverName: string | undefined };

const MAX_RECORD = 16_384 + 2048;

/** Parses the buffered start of a connection; asks for more bytes until the first record is whole. */
export function peekClientHello(buf: Uint8Array): ClientHelloPeek {
  if (buf.length < 1) return { kind: 'incomplete' };
  if (buf[0] !== 0x16) return { kind: 'not_tls' };
  if (buf.length < 5) return { kind: 'incomplete' };
  const recordLen = ((buf[3] as number) << 8) | (buf[4] as number);
  if (recordLen > MAX_RECORD || (buf[1] as number) !== 3) return { kind: 'not_tls' };
  if (buf.length < 5 + recordLen) return { kind: 'incomplete' };
  const rec = buf.subarray(5, 5 + recordLen);
  let p = 0;
  const need = (n: number) => p + n <= rec.length;
  const u8 = () => rec[p++] as number;
  const u16 = () => { const v = ((rec[p] as number) << 8) | (rec[p + 1] as number); p += 2; return v; };
  if (!need(4) || u8() !== 0x01) return { kind: 'not_tls' }; // handshake type client_hello
  p += 3; // handshake length
  if (!need(2 + 32 + 1)) return { kind: 'not_tls' };
  p += 2 + 32; // version, random
  const sidLen = u8();
  if (!need(sidLen + 2)) return { kind: 'not_tls' };
  p += sidLen;
  const csLen = u16();
  if (!need(csLen + 1)) return { kind: 'not_tls' };
  p += csLen;
  const cmLen = u8();
  if (!need(cmLen)) return { kind: 'not_tls' };
  p += cmLen;
  if (!need(2)) return { kind: 'client_hello', serverName: undefined };
  const extEnd = p + 2 + u16();
  if (extEnd > rec.length) return { kind: 'not_tls' };
  while (p + 4 <= extEnd) {
    const type = u16();
    const len = u16();
    if (p + len > extEnd) return { kind: 'not_tls' };
    if (type === 0x0000) {
      let q = p + 2; // server_name_list length
      const end = p + len;
      while (q + 3 <= end) {
        const nameType = rec[q] as number;
        const nameLen = ((rec[q + 1] as number) << 8) | (rec[q + 2] as number);
        q += 3;
        if (q + nameLen > end) return { kind: 'not_tls' };
        if (nameType === 0) {
          let name = '';
          for (let i = q; i < q + nameLen; i++) name += String.fromCharCode(rec[i] as number);
          return { kind: 'client_hello', serverName: name };
        }
        q += nameLen;
      }
    }
    p += len;
  }
  return { kind: 'client_hello', serverName: undefined };
}
