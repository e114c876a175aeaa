// SSE framing over bytes (line ends of every kind, cut anywhere, byte-order marks, bounded lines)
// and the parse-free reading of Anthropic text deltas, checked against JSON.parse on every row and
// on generated text.
import t from 'tap';
import { anthropicDeltaBytes, createSseFramer, isQuietAnthropicEvent } from '../../../src/metering/sse-frames.ts';

function frame(body: Buffer | string, chunk: number, maxLineBytes = 1024): string[] {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const events: string[] = [];
  const f = createSseFramer({ maxLineBytes, onEvent: (b, s, e) => events.push(b.toString('utf8', s, e)) });
  for (let i = 0; i < bytes.length; i += chunk) f.push(bytes.subarray(i, i + chunk));
  f.end();
  return events;
}

t.test('framing: every chunking gives the same events', async (t) => {
  const BOM = '\uFEFF';
  const cases: [string, string | Buffer, string[], number?][] = [
    ['LF', 'data: a\n\ndata: b\n\n', ['a', 'b']],
    ['CRLF', 'data: a\r\n\r\ndata: b\r\n\r\n', ['a', 'b']],
    ['CR', 'data: a\r\rdata: b\r\r', ['a', 'b']],
    ['mixed line ends', 'data: a\r\n\rdata: b\n\r\n', ['a', 'b']],
    ['no space after the colon', 'data:a\n\n', ['a']],
    ['two spaces keep one', 'data:  a\n\n', [' a']],
    ['data lines joined with LF', 'data: a\ndata: b\n\n', ['a\nb']],
    ['other fields and comments ignored', 'event: x\nid: 1\nretry: 5\n: hi\ndata: a\n\n', ['a']],
    ['a blank line without data is no event', '\n\n: c\n\ndata: a\n\n', ['a']],
    ['the last event without its blank line', 'data: a\n', ['a']],
    ['the last line without its line end', 'data: a', ['a']],
    ['a byte-order mark at the start is dropped', `${BOM}data: a\n\n`, ['a']],
    ['a byte-order mark later is data', `data: ${BOM}a\n\n`, [`${BOM}a`]],
    ['a stream of one cut byte-order mark', Buffer.from([0xef, 0xbb]), []],
    ['a first byte that only looks like a mark', Buffer.concat([Buffer.from([0xef]), Buffer.from('data: a\n\n')]), []],
    ['empty', '', []],
    ['a line too long is skipped, the next is read', `data: ${'x'.repeat(40)}\n\ndata: b\n\n`, ['b'], 16],
    ['data lines too long together are dropped', 'data: 0123456789\ndata: 0123456789\n\ndata: b\n\n', ['b'], 16],
    ['a long comment line is skipped too', `: ${'x'.repeat(40)}\ndata: b\n\n`, ['b'], 16],
    ['a long last line without its end', `data: b\n\ndata: ${'x'.repeat(40)}`, ['b'], 16],
  ];
  for (const [why, body, want, max] of cases) {
    const size = Buffer.byteLength(body);
    for (const chunk of [1, 2, 3, 5, Math.max(1, size)]) t.same(frame(body, chunk, max), want, `${why} (chunks of ${chunk})`);
  }
});

t.test('framing: a cut byte-order mark is still dropped, and a non-mark is kept', async (t) => {
  const events: string[] = [];
  const f = createSseFramer({ maxLineBytes: 100, onEvent: (b, s, e) => events.push(b.toString('utf8', s, e)) });
  f.push(Buffer.alloc(0));
  f.push(Buffer.from([0xef]));
  f.push(Buffer.from([0xbb, 0xbf]));
  f.push(Buffer.from('data: a\n\n'));
  f.end();
  t.same(events, ['a']);
  const g: string[] = [];
  const h = createSseFramer({ maxLineBytes: 100, onEvent: (b, s, e) => g.push(b.toString('utf8', s, e)) });
  h.push(Buffer.from([0xef, 0x61]));
  h.push(Buffer.from('\ndata: b\n\n'));
  h.end();
  t.same(g, ['b'], 'bytes that are not a mark are an ordinary (ignored) line');
});

t.test('framing: an empty chunk between the CR and LF of one line end', async (t) => {
  const events: string[] = [];
  const f = createSseFramer({ maxLineBytes: 100, onEvent: (b, s, e) => events.push(b.toString('utf8', s, e)) });
  for (const piece of ['data: a\r', '', '\n', '\r', '\n', 'data: b\n\n']) f.push(Buffer.from(piece));
  f.end();
  t.same(events, ['a', 'b'], 'CR, nothing, LF is one line end; the next CRLF ends the event');
});

t.test('framing: an event open across chunks does not see later changes to the chunk', async (t) => {
  const events: string[] = [];
  const f = createSseFramer({ maxLineBytes: 100, onEvent: (b, s, e) => events.push(b.toString('utf8', s, e)) });
  const first = Buffer.from('data: abc\n');
  f.push(first);
  first.fill(0x7a); // the producer reuses its buffer
  f.push(Buffer.from('data: def\n\n'));
  f.end();
  t.same(events, ['abc\ndef']);
});

const delta = (type: string, key: string, value: string, index = '0') => `{"type":"content_block_delta","index":${index},"delta":{"type":"${type}","${key}":${JSON.stringify(value)}}}`;

t.test('anthropicDeltaBytes: the API layout is read without a parse, like a parse would', async (t) => {
  const cases: [string, string, number | undefined][] = [
    ['ascii text', delta('text_delta', 'text', 'Hello'), 5],
    ['raw UTF-8', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"héllo 中 😀"}}', 15],
    ['escapes', '{"type":"content_block_delta","index":12,"delta":{"type":"text_delta","text":"a\\n\\"\\\\\\/\\b\\f\\r\\t"}}', 9],
    ['\\u escapes of every width', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\\u0041\\u00e9\\u4e2d\\ud83d\\ude00"}}', 10],
    ['tool arguments', delta('input_json_delta', 'partial_json', '{"a":1}'), 7],
    ['thinking', delta('thinking_delta', 'thinking', 'hmm'), 3],
    ['a signature is not relayed output', delta('signature_delta', 'signature', 'c2ln'), 0],
    ['an empty text', delta('text_delta', 'text', ''), 0],
    // not the layout: parse it instead
    ['message_start', '{"type":"message_start","message":{}}', undefined],
    ['no index', '{"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}', undefined],
    ['an index that is no number', delta('text_delta', 'text', 'x', '"0"'), undefined],
    ['an index with a leading zero', delta('text_delta', 'text', 'x', '01'), undefined],
    ['index 0 alone is fine', delta('text_delta', 'text', 'x', '0'), 1],
    ['spaces', '{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}', undefined],
    ['a trailing space', `${delta('text_delta', 'text', 'x')} `, undefined],
    ['one brace short', delta('text_delta', 'text', 'x').slice(0, -1), undefined],
    ['an extra field after the text', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x","more":1}}', undefined],
    ['fields in another order', '{"type":"content_block_delta","index":0,"delta":{"text":"x","type":"text_delta"}}', undefined],
    ['a value that is no string', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":5}}', undefined],
    ['a delta with no second field', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta"}}', undefined],
    ['a key without its colon', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text" "x"}}', undefined],
    ['a key with an escape', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","te\\u0078t":"x"}}', undefined],
    ['a key that never ends', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text', undefined],
    ['an unknown escape', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\\x"}}', undefined],
    ['a short \\u escape', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\\u12G4"}}', undefined],
    ['a \\u escape cut by the end', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\\u12', undefined],
    ['a raw control character', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\tb"}}', undefined],
    ['a string that never ends', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"abc', undefined],
    ['a type that never ends', '{"type":"content_block_delta","index":0,"delta":{"type":"text_de', undefined],
    ['cut after the index', '{"type":"content_block_delta","index":0', undefined],
  ];
  for (const [why, text, want] of cases) {
    const got = anthropicDeltaBytes(Buffer.from(text));
    t.equal(got, want, why);
    if (got !== undefined) {
      // what a parse reads: the same count
      const d = (JSON.parse(text) as { delta: Record<string, unknown> }).delta;
      const s = d['text'] ?? d['partial_json'] ?? d['thinking'];
      t.equal(got, typeof s === 'string' ? Buffer.byteLength(s) : 0, `${why}: as parsed`);
    }
  }
});

t.test('anthropicDeltaBytes agrees with JSON.parse on generated text', async (t) => {
  // a fixed-seed generator: the same strings every run
  let seed = 0x2f6b;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const alphabet = ['a', 'Z', ' ', '"', '\\', '/', '\n', '\t', '\u0001', 'é', '中', '😀', '\u2028', '{', '}'];
  let checked = 0;
  for (let i = 0; i < 500; i++) {
    let s = '';
    for (let k = rand(20); k > 0; k--) s += alphabet[rand(alphabet.length)];
    const text = delta('text_delta', 'text', s, String(rand(3)));
    const got = anthropicDeltaBytes(Buffer.from(text));
    if (got !== Buffer.byteLength(s)) t.fail(`${JSON.stringify(s)}: ${got} ≠ ${Buffer.byteLength(s)}`);
    else checked++;
  }
  t.equal(checked, 500, 'every generated delta read as a parse reads it');
});

t.test('anthropicDeltaBytes reads only its range: every cut of a delta is refused, whatever follows it', async (t) => {
  const texts = [
    delta('text_delta', 'text', 'a\\"é\n'),
    '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\\u00e9x"}}',
  ];
  for (const text of texts) {
    const b = Buffer.from(`${text}\n${text}`);
    const len = Buffer.byteLength(text);
    let refused = 0;
    for (let cut = 0; cut < len; cut++) if (anthropicDeltaBytes(b, 0, cut) === undefined) refused++;
    t.equal(refused, len, `${text}: no cut reads as a delta`);
    t.equal(anthropicDeltaBytes(b, len + 1, b.length), anthropicDeltaBytes(Buffer.from(text)), 'a range later in the buffer reads as the delta alone');
  }
});

t.test('isQuietAnthropicEvent: the events metering does not read, by their leading type', async (t) => {
  const cases: [string, boolean][] = [
    ['{"type":"ping"}', true],
    ['{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}', true],
    ['{"type":"content_block_stop","index":0}', true],
    ['{"type":"pingx"}', false],
    ['{"type":"ping"', false],
    ['{"type":"message_delta","usage":{"output_tokens":1}}', false],
    ['{ "type":"ping"}', false],
  ];
  for (const [text, want] of cases) t.equal(isQuietAnthropicEvent(Buffer.from(text)), want, text);
  t.equal(isQuietAnthropicEvent(Buffer.from('{"type":"ping"}'), 0, 14), false, 'cut before its end');
});
