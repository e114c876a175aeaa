// Owns: Server-Sent-Events framing over raw bytes — lines split on LF, CR or CRLF (also across
// chunk boundaries), `data:` lines joined per event, events handed out as bytes — and the fast
// reading of Anthropic's text deltas, the bulk of every streamed answer, without a JSON parse.
// Working on bytes means no text decoding for the many events metering only counts. PURE.

const LF = 10;
const CR = 13;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const DATA = Buffer.from('data:');
// The bytes as a one-byte string (a copy, made natively): string search is V8's fastest.
const latin1Slice = Buffer.prototype.latin1Slice;
const latin1 = (b: Buffer): string => latin1Slice.call(b, 0, b.length);

export interface SseFramerOptions {
  /** Longest line (and longest event data) kept; longer ones are skipped. */
  maxLineBytes: number;
  /**
   * Called once per event with its data lines joined by "\n": bytes `start` to `end` of `buf` (a
   * view of the pushed chunk: copy what you keep).
   */
  onEvent: (buf: Buffer, start: number, end: number) => void;
}

export interface SseFramer {
  push(chunk: Buffer): void;
  /** The stream ended: a last line without its line end still counts, and so does its event. */
  end(): void;
}

function matchAt(b: Buffer, at: number, end: number, lit: Buffer): boolean {
  if (at + lit.length > end) return false;
  for (let i = 0; i < lit.length; i++) if (b[at + i] !== lit[i]) return false;
  return true;
}

export function createSseFramer(opts: SseFramerOptions): SseFramer {
  return new Framer(opts.maxLineBytes, opts.onEvent);
}

/**
 * One stream's framing state. A class, not closures: the gateway runs TypeScript through tsx,
 * whose esbuild keepNames gives every closure a name with Object.defineProperty when it is made —
 * measurable when a framer is made per metered stream.
 */
class Framer implements SseFramer {
  // the first bytes, held until they show whether the stream starts with a byte-order mark
  private head: Buffer | undefined = Buffer.alloc(0);
  // a line cut by a chunk boundary (copied: the chunk is not kept)
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private skipping = false;
  private afterCR = false;
  // The current event's data. One line (the usual case) is kept as a range of the buffer it is in
  // — the current chunk, until the chunk is left; more lines are copied and joined.
  private one: Buffer | undefined = undefined;
  private oneStart = 0;
  private oneEnd = 0;
  private many: Buffer[] | undefined = undefined;
  private dataBytes = 0;

  constructor(
    private readonly maxLineBytes: number,
    private readonly onEvent: SseFramerOptions['onEvent'],
  ) {}

  push(input: Buffer): void {
    let chunk = input;
    const head = this.head;
    if (head !== undefined) {
      // a leading byte-order mark is not part of the first line, even when it arrives cut
      if (head.length === 0 && chunk.length >= BOM.length) {
        // (the usual first chunk: no copy)
        this.head = undefined;
        this.scan(matchAt(chunk, 0, chunk.length, BOM) ? chunk.subarray(BOM.length) : chunk);
        return;
      }
      const joined = Buffer.concat([head, chunk]);
      const n = Math.min(joined.length, BOM.length);
      if (joined.subarray(0, n).equals(BOM.subarray(0, n)) && joined.length < BOM.length) {
        this.head = joined;
        return;
      }
      chunk = matchAt(joined, 0, joined.length, BOM) ? joined.subarray(BOM.length) : joined;
      this.head = undefined;
    }
    this.scan(chunk);
  }

  end(): void {
    this.head = undefined; // at most a cut byte-order mark: no line
    if (!this.skipping && this.partial.length > 0) {
      const line = Buffer.concat(this.partial, this.partialBytes);
      this.onLine(line, 0, line.length);
    }
    this.partial = [];
    this.partialBytes = 0;
    this.dispatch();
  }

  private clear(): void {
    this.one = undefined;
    this.many = undefined;
    this.dataBytes = 0;
  }

  private dispatch(): void {
    if (this.many) {
      const joined = Buffer.concat(this.many);
      this.clear();
      this.onEvent(joined, 0, joined.length);
    } else if (this.one) {
      const b = this.one;
      this.clear();
      this.onEvent(b, this.oneStart, this.oneEnd);
    }
  }

  private onLine(b: Buffer, start: number, end: number): void {
    if (start === end) {
      this.dispatch();
      return;
    }
    if (!matchAt(b, start, end, DATA)) return; // event:, id:, retry: and comments carry nothing metering needs
    const from = b[start + 5] === 32 ? start + 6 : start + 5;
    const joinedBytes = this.one || this.many ? this.dataBytes + 1 + (end - from) : end - from;
    if (joinedBytes > this.maxLineBytes) {
      this.clear();
      return;
    }
    this.dataBytes = joinedBytes;
    if (this.one) {
      this.many = [Buffer.from(this.one.subarray(this.oneStart, this.oneEnd))];
      this.one = undefined;
    }
    if (!this.many) {
      this.one = b;
      this.oneStart = from;
      this.oneEnd = end;
      return;
    }
    this.many.push(Buffer.from('\n'), Buffer.from(b.subarray(from, end)));
  }

  private keepPartial(piece: Buffer): void {
    if (this.skipping || piece.length === 0) return;
    this.partialBytes += piece.length;
    if (this.partialBytes > this.maxLineBytes) {
      this.partial = [];
      this.partialBytes = 0;
      this.skipping = true;
      return;
    }
    this.partial.push(Buffer.from(piece));
  }

  private endLine(chunk: Buffer, start: number, end: number): void {
    if (!this.skipping) {
      if (this.partial.length === 0) this.onLine(chunk, start, end);
      else {
        this.partial.push(chunk.subarray(start, end));
        const line = Buffer.concat(this.partial, this.partialBytes + end - start);
        this.onLine(line, 0, line.length);
      }
    }
    this.partial = [];
    this.partialBytes = 0;
    this.skipping = false;
  }

  private scan(chunk: Buffer): void {
    let pos = 0;
    if (this.afterCR && chunk.length > 0) {
      // the LF of a CRLF split across two chunks is not a second line end
      if (chunk[0] === LF) pos = 1;
      this.afterCR = false;
    }
    // Line ends are searched in a latin1 view of the chunk (one character per byte, so positions
    // are byte offsets): V8's string search costs a fraction of a typed-array search per call.
    const text = latin1(chunk);
    let nextCR = text.indexOf('\r', pos);
    while (pos < chunk.length) {
      let end = text.indexOf('\n', pos);
      if (nextCR !== -1 && nextCR < pos) nextCR = text.indexOf('\r', pos);
      if (nextCR !== -1 && (end === -1 || nextCR < end)) end = nextCR;
      if (end === -1) {
        this.keepPartial(chunk.subarray(pos));
        break;
      }
      this.endLine(chunk, pos, end);
      pos = end + 1;
      if (chunk[end] === CR) {
        if (pos === chunk.length) this.afterCR = true;
        else if (chunk[pos] === LF) pos++;
      }
    }
    if (this.one === chunk) {
      // an event still open when the chunk is left: keep a copy, not a view of the chunk
      this.one = Buffer.from(chunk.subarray(this.oneStart, this.oneEnd));
      this.oneStart = 0;
      this.oneEnd = this.one.length;
    }
  }
}

// --- Anthropic text deltas, read without a JSON parse --------------------------------------------
//
// {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}
//
// Exactly this layout (what the Messages API sends, whatever the delta type) is read here; any other
// byte sequence returns undefined and the caller parses the JSON — the fast reading never decides
// what a parse would have read differently.

const DELTA_HEAD = Buffer.from('{"type":"content_block_delta","index":');
const DELTA_MID = Buffer.from(',"delta":{"type":"');
const RELAYED_KEYS = [Buffer.from('text'), Buffer.from('partial_json'), Buffer.from('thinking')];

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/** The end of a JSON string starting after its opening quote at `at`, and its UTF-8 length once unescaped; -1 if invalid. */
function scanString(b: Buffer, at: number, end: number): number {
  let n = 0;
  for (let i = at; i < end; i++) {
    const c = b[i] as number;
    if (c === 34) {
      scanned = n;
      return i + 1;
    }
    if (c < 0x20) return -1;
    if (c !== 92) {
      n++;
      continue;
    }
    if (++i >= end) return -1;
    const e = b[i];
    if (e === 117 /* u */) {
      let cp = 0;
      for (let k = 1; k <= 4; k++) {
        const h = i + k < end ? hexDigit(b[i + k] as number) : -1;
        if (h < 0) return -1;
        cp = cp * 16 + h;
      }
      i += 4;
      // a surrogate half counts 2, so a pair counts the 4 bytes of its code point
      n += cp < 0x80 ? 1 : cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff) ? 2 : 3;
    } else if (e === 34 || e === 92 || e === 47 || e === 98 || e === 102 || e === 110 || e === 114 || e === 116) n++;
    else return -1;
  }
  return -1;
}
// scanString's second result (the unescaped UTF-8 length), without an object per call
let scanned = 0;

/**
 * An Anthropic `content_block_delta` event in the API's own layout, in bytes `start` to `end` of
 * `b`: the UTF-8 length of the relayed text (text, partial_json or thinking; 0 for other delta
 * kinds). Undefined when the bytes are not exactly that layout — then parse them as JSON.
 */
export function anthropicDeltaBytes(b: Buffer, start = 0, end = b.length): number | undefined {
  if (!matchAt(b, start, end, DELTA_HEAD)) return undefined;
  let i = start + DELTA_HEAD.length;
  const digits = i;
  while (i < end && (b[i] as number) >= 48 && (b[i] as number) <= 57) i++;
  if (i === digits || (i - digits > 1 && b[digits] === 48 /* a leading 0 */) || !matchAt(b, i, end, DELTA_MID)) return undefined;
  const typeEnd = scanString(b, i + DELTA_MID.length, end);
  if (typeEnd < 0 || typeEnd + 2 > end || b[typeEnd] !== 44 /* , */ || b[typeEnd + 1] !== 34 /* " */) return undefined;
  const keyStart = typeEnd + 2;
  let keyEnd = keyStart;
  while (keyEnd < end && b[keyEnd] !== 34 && b[keyEnd] !== 92) keyEnd++;
  if (keyEnd + 3 > end || b[keyEnd] !== 34 || b[keyEnd + 1] !== 58 /* : */ || b[keyEnd + 2] !== 34) return undefined;
  const valueEnd = scanString(b, keyEnd + 3, end);
  if (valueEnd < 0 || valueEnd + 2 !== end || b[valueEnd] !== 125 || b[valueEnd + 1] !== 125) return undefined;
  for (const k of RELAYED_KEYS) if (k.length === keyEnd - keyStart && matchAt(b, keyStart, keyEnd, k)) return scanned;
  return 0;
}

// Anthropic events metering does not read (once a stream has been seen to be readable, they change
// nothing): content_block_start, content_block_stop and ping.
const QUIET_EVENTS = ['content_block_start', 'content_block_stop', 'ping'].map((t) => Buffer.from(`{"type":"${t}"`));

/** True for a content_block_start, content_block_stop or ping event in the API's layout (type first). */
export function isQuietAnthropicEvent(b: Buffer, start = 0, end = b.length): boolean {
  for (const q of QUIET_EVENTS) {
    const after = start + q.length;
    if (after < end && matchAt(b, start, end, q) && (b[after] === 44 || b[after] === 125)) return true;
  }
  return false;
}
