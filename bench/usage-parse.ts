// Owns: timing the metering stage's usage parser (src/metering/usage-parser.ts) on the stream of
// bench scenario 10 — an Anthropic SSE answer of 100 text deltas, each its own chunk — against a
// baseline measured in the same run: the same bytes decoded as text, split into events and every
// event JSON-parsed (what a straightforward meter does). Pure, in the bench process.
// Run alone: node --import tsx bench/usage-parse.ts
import { pathToFileURL } from 'node:url';
import { createUsageParser } from '../src/metering/usage-parser.ts';
import { STREAM_HEAD, streamDelta, streamTail } from './lib/anthropic-stream.ts';
import { median } from './lib/load.ts';

export interface UsageParseResults {
  events: number;
  bytes: number;
  /** µs per stream, the parser */
  parserUs: number;
  /** µs per stream, decode + split + JSON.parse every event */
  baselineUs: number;
  /** baseline ÷ parser */
  speedup: number;
  /** the parser read the right usage (a guard against timing a parser that does nothing) */
  correct: boolean;
}

/** The chunks of the stream bench/lib/upstream-server.ts sends for `x-bench-events: n`. */
export function benchStream(n: number): Buffer[] {
  return [STREAM_HEAD, ...Array.from({ length: n }, (_, i) => streamDelta(i)), streamTail(n)].map((t) => Buffer.from(t));
}

function baseline(chunks: readonly Buffer[]): number {
  const decoder = new TextDecoder();
  let text = '';
  let output = 0;
  for (const c of chunks) {
    text += decoder.decode(c, { stream: true });
    let cut = text.indexOf('\n\n');
    while (cut >= 0) {
      for (const line of text.slice(0, cut).split('\n')) {
        if (!line.startsWith('data:')) continue;
        const e = JSON.parse(line.slice(5)) as { usage?: { output_tokens?: number } };
        if (e.usage?.output_tokens !== undefined) output = e.usage.output_tokens;
      }
      text = text.slice(cut + 2);
      cut = text.indexOf('\n\n');
    }
  }
  return output;
}

function timeUs(rounds: number, f: () => void): number {
  for (let i = 0; i < Math.min(200, rounds); i++) f(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) f();
  return ((performance.now() - t0) * 1000) / rounds;
}

export function benchUsageParse(events = 100, rounds = 3000): UsageParseResults {
  const chunks = benchStream(events);
  let correct = true;
  const parse = () => {
    const p = createUsageParser('anthropic_messages', 'text/event-stream');
    for (const c of chunks) p.push(c);
    const r = p.finish();
    if (r.usage?.outputTokens !== events || r.usage.inputTokens !== 25 || !r.usageFinal) correct = false;
  };
  const base = () => {
    if (baseline(chunks) !== events) correct = false;
  };
  // interleaved, median of five: the machine's slow and fast phases hit both sides
  const p: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < 5; i++) {
    p.push(timeUs(rounds, parse));
    b.push(timeUs(rounds, base));
  }
  const parserUs = median(p);
  const baselineUs = median(b);
  return { events, bytes: chunks.reduce((n, c) => n + c.length, 0), parserUs, baselineUs, speedup: baselineUs / parserUs, correct };
}

export function formatUsageParse(r: UsageParseResults): string {
  return [
    `Usage parser (the metering stage's, on #10's stream: ${r.events} Anthropic text deltas, ${r.bytes} bytes; pure, in the bench process):`,
    `  parser ${r.parserUs.toFixed(1)} µs per stream; baseline (decode, split, JSON.parse every event) ${r.baselineUs.toFixed(1)} µs; ` +
      `${r.speedup.toFixed(1)}× faster${r.correct ? '' : ' — WRONG USAGE READ: the figure is void'}`,
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(formatUsageParse(benchUsageParse()));
}
