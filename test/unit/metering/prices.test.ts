import { readFileSync } from 'node:fs';
import t from 'tap';
import { BUNDLED_PRICES, parsePriceTable } from '../../../src/config/price-config.ts';
import { formatProblem } from '../../../src/errors.ts';
import { formatUsd, perMillionToPico, perThousandToPico, resolveModelPrice, usageCostMicros, worstCaseMicros, type ModelPrice } from '../../../src/metering/prices.ts';

const bundled = parsePriceTable(BUNDLED_PRICES, readFileSync(BUNDLED_PRICES, 'utf8'));
if (!bundled.ok) throw new Error(bundled.problems.map(formatProblem).join('\n'));
const table = bundled.table;

const tk = (input: number, output: number, cacheRead = 0, cacheWrite = 0, cacheWrite1h = 0) => ({ inputTokens: input, outputTokens: output, cacheReadTokens: cacheRead, cacheWriteTokens: cacheWrite, cacheWrite1hTokens: cacheWrite1h });

t.test('the shipped prices.yaml is valid, dated and names its sources', async (t) => {
  t.match(table.asOf, /^\d{4}-\d{2}-\d{2}$/);
  t.ok(table.sources.length >= 2);
  t.ok(table.sections.get('anthropic')!.size > 10);
  t.ok(table.sections.get('openai')!.size > 10);
});

t.test('model resolution: exact, alias, dated snapshot, case; unknown stays unknown', async (t) => {
  const rows: Array<[string, string, string | undefined]> = [
    ['anthropic', 'claude-sonnet-4-5', 'claude-sonnet-4-5'],
    ['anthropic', 'claude-sonnet-4-5-20250929', 'claude-sonnet-4-5'],
    ['anthropic', 'claude-sonnet-4-5-20991231', 'claude-sonnet-4-5'],
    ['anthropic', 'Claude-Opus-4-0', 'claude-opus-4'],
    ['anthropic', 'claude-3-5-haiku-latest', 'claude-3-5-haiku'],
    ['openai', 'gpt-4o-2024-08-06', 'gpt-4o'],
    ['openai', 'gpt-4o-2024-05-13', 'gpt-4o-2024-05-13'],
    ['openai', 'gpt-4o-mini-2024-07-18', 'gpt-4o-mini'],
    ['openai', 'gpt-9-preview', undefined],
    ['openai', 'gpt-4o-mini-2024-07-18-extra', undefined],
    ['openai', 'claude-sonnet-4-5', undefined],
    ['nope', 'gpt-4o', undefined],
  ];
  for (const [section, model, want] of rows) t.equal(resolveModelPrice(table, section, model)?.id, want, `${section}/${model}`);
});

t.test('cost in micro-dollars: per kind, cache rates apart, rounded up, never fractional', async (t) => {
  const sonnet = resolveModelPrice(table, 'anthropic', 'claude-sonnet-4-5')!;
  // 6.09: 100 input × $3 + 1000 cache reads × $0.30 + 200 cache writes × $3.75 + 15 output × $15 (per MTok)
  t.equal(usageCostMicros(sonnet, tk(100, 15, 1000, 200)), 300 + 300 + 750 + 225);
  t.equal(usageCostMicros(sonnet, tk(0, 0, 0, 1000, 1000)), 6000, '1-hour cache writes at their own rate');
  t.equal(usageCostMicros(sonnet, tk(0, 0)), 0, 'no tokens, no cost');
  const mini = resolveModelPrice(table, 'openai', 'gpt-4o-mini')!;
  t.equal(usageCostMicros(mini, tk(1, 0)), 1, '0.15 µ$ rounds up to 1 µ$: usage is never $0');
  t.equal(usageCostMicros(mini, tk(1_000_000, 1_000_000, 1_000_000)), 150_000 + 600_000 + 75_000);
  t.equal(perMillionToPico(0.075), 75_000);
  t.equal(perMillionToPico(0.1) * 3, 300_000, 'no float drift');
});

t.test('long-context rates apply to every token past the prompt threshold', async (t) => {
  const sonnet = resolveModelPrice(table, 'anthropic', 'claude-sonnet-4-5')!;
  t.equal(usageCostMicros(sonnet, tk(200_000, 1000)), 600_000 + 15_000);
  t.equal(usageCostMicros(sonnet, tk(200_001, 1000)), 1_200_006 + 22_500);
});

t.test('worst case: dearest input rate for the estimate plus the full output cap', async (t) => {
  const opus = resolveModelPrice(table, 'anthropic', 'claude-opus-4-1')!;
  // 1000 input at the 1h cache-write rate ($30) + 4096 output at $75
  t.equal(worstCaseMicros(opus, 1000, 4096), 30_000 + 307_200);
  const m: ModelPrice = { ...opus, price: { input: 1, output: 1, cacheWrite: 1, cacheWrite1h: 1, cacheRead: 1 }, longContext: undefined };
  t.equal(worstCaseMicros(m, 0, 0), 1, 'never a zero reservation');
});

t.test('server-side web searches: charged at the section fee, reserved with the worst case', async (t) => {
  const sonnet = resolveModelPrice(table, 'anthropic', 'claude-sonnet-4-5')!;
  t.equal(table.webSearch.get('anthropic'), perThousandToPico(10), 'the bundled table prices Anthropic web search at $10 per 1,000');
  t.equal(sonnet.webSearch, 10_000_000_000, '$0.01 a search, in pico-dollars');
  t.equal(usageCostMicros(sonnet, { ...tk(100, 15), webSearches: 3 }), 300 + 225 + 30_000);
  t.equal(usageCostMicros(sonnet, { ...tk(100, 15), webSearches: 0 }), 300 + 225);
  t.equal(worstCaseMicros(sonnet, 1000, 100, 5), 1000 * 6 + 100 * 15 + 50_000, '1000 input at the 1h cache-write rate, 100 output, 5 searches');
  t.equal(worstCaseMicros(sonnet, 1000, 100), 1000 * 6 + 100 * 15, 'no searches reserved by default');
  const mini = resolveModelPrice(table, 'openai', 'gpt-4o-mini')!;
  t.equal(mini.webSearch, 0, 'OpenAI web search is not priced');
  t.equal(usageCostMicros(mini, { ...tk(0, 0), webSearches: 4 }), 0);
  t.equal(perThousandToPico(25), 25_000_000_000);
  const custom = parsePriceTable('prices.yaml', 'as_of: "2026-01-01"\nsources: [x]\nproviders:\n  acme:\n    web_search_per_1k: 5\n    models:\n      m: { input: 1 }\n');
  t.ok(custom.ok);
  if (custom.ok) {
    t.equal(custom.table.webSearch.get('acme'), 5_000_000_000);
    t.equal(resolveModelPrice(custom.table, 'acme', 'm')?.webSearch, 5_000_000_000);
  }
});

t.test('priority processing rates (OpenAI service_tier: priority)', async (t) => {
  const mini = resolveModelPrice(table, 'openai', 'gpt-4o-mini')!;
  t.ok(mini.priority, 'the bundled table has priority rates for gpt-4o-mini');
  t.equal(usageCostMicros(mini, tk(1_000_000, 1_000_000, 1_000_000), 'priority'), 250_000 + 1_000_000 + 125_000);
  t.equal(usageCostMicros(mini, tk(1_000_000, 1_000_000, 1_000_000)), 150_000 + 600_000 + 75_000, 'standard without the tier');
  t.equal(worstCaseMicros(mini, 1000, 1000, 0, 'priority'), 250 + 1000);
  const nano = resolveModelPrice(table, 'openai', 'gpt-5-nano')!;
  t.equal(nano.priority, undefined, 'not every model has priority rates');
  t.equal(usageCostMicros(nano, tk(1_000_000, 0), 'priority'), 50_000, 'without them the standard rates apply');
  const sonnet = resolveModelPrice(table, 'anthropic', 'claude-sonnet-4-5')!;
  t.equal(worstCaseMicros(sonnet, 300_000, 0, 0, 'priority'), worstCaseMicros(sonnet, 300_000, 0), 'long-context rates still apply without priority rates');
});

t.test('formatUsd', async (t) => {
  t.equal(formatUsd(1_000_000), '$1.00');
  t.equal(formatUsd(123_456_789), '$123.46');
  t.equal(formatUsd(1234), '$0.001234');
  t.equal(formatUsd(0), '$0.00');
});

t.test('broken price tables are refused with file:line:col', async (t) => {
  const rows: Array<[string, RegExp]> = [
    ['as_of: "2026-01-01"\nsources: [x]\nproviders:\n  openai:\n    models:\n      gpt-x: { input: 0, output: 1 }\n', /prices\.yaml:6:\d+: .*input.*more than 0/],
    ['as_of: "2026-01-01"\nsources: [x]\nproviders:\n  openai:\n    models:\n      gpt-x: { input: 1, ouput: 1 }\n', /prices\.yaml:6:\d+: unknown key "ouput"/],
    ['as_of: "2026-01-01"\nsources: [x]\nproviders:\n  openai:\n    models:\n      gpt-x: { input: 1 }\n      gpt-y: { input: 1, aliases: [GPT-X] }\n', /prices\.yaml:7:\d+: model "GPT-X" is already defined/],
    ['as_of: yesterday\nsources: [x]\nproviders: {}\n', /prices\.yaml:1:\d+: as_of/],
    ['as_of: "2026-01-01"\nproviders: {}\n', /sources is required/],
    ['', /empty/],
    ['as_of: "2026-01-01"\nsources: [x]\nproviders:\n  openai:\n    models:\n      gpt-x: { input: 1, output: -2 }\n', /prices\.yaml:6:\d+/],
    ['as_of: "2026-01-01"\nsources: [x]\nproviders:\n  openai:\n    web_search_per_1k: 0\n    models:\n      gpt-x: { input: 1 }\n', /prices\.yaml:5:\d+: .*web_search_per_1k/],
  ];
  for (const [text, want] of rows) {
    const r = parsePriceTable('prices.yaml', text);
    t.notOk(r.ok, text);
    if (!r.ok) t.match(r.problems.map(formatProblem).join('\n'), want);
  }
});
