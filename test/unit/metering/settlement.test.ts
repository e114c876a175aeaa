import t from 'tap';
import type { LlmRequest } from '../../../src/metering/llm-request.ts';
import type { ModelPrice } from '../../../src/metering/prices.ts';
import { settleCharge } from '../../../src/metering/settlement.ts';
import type { UsageReading } from '../../../src/metering/usage-parser.ts';

const price: ModelPrice = { id: 'm', provider: 'p', price: { input: 3_000_000, output: 15_000_000, cacheWrite: 3_750_000, cacheWrite1h: 6_000_000, cacheRead: 300_000 }, longContext: undefined, maxOutputTokens: 1000, fallback: false, webSearch: 0 };
const request: LlmRequest = { model: 'm', maxOutputTokens: 100, choices: 1, stream: true, includeUsage: false, inputTokenEstimate: 300, providerSideInput: false, webSearches: 0, serviceTier: undefined };
const tk = (i: number, o: number) => ({ inputTokens: i, outputTokens: o, cacheReadTokens: 0, cacheWriteTokens: 0, cacheWrite1hTokens: 0 });
const reading = (over: Partial<UsageReading>): UsageReading => ({ model: undefined, usage: undefined, usageFinal: false, relayedOutputTokens: 0, error: undefined, readable: true, ...over });
const base = { responseStarted: true, status: 200, request, price, reservedMicros: 2400 };

t.test('settlement rule (docs/metering.md)', async (t) => {
  t.same(settleCharge({ ...base, responseStarted: false, reading: undefined }), { action: 'release' }, 'upstream never answered → released in full');
  t.match(settleCharge({ ...base, reading: reading({ usage: tk(100, 15), usageFinal: true, model: 'm-2026' }) }), { action: 'charge', costMicros: 300 + 225, estimated: false, model: 'm-2026' }, 'final usage is charged exactly');
  // 6.04 (second case): an explicit zero with no content relayed is respected
  t.match(settleCharge({ ...base, status: 500, reading: reading({ usage: tk(0, 0), usageFinal: true }) }), { action: 'charge', costMicros: 0, estimated: false });
  t.match(settleCharge({ ...base, reading: reading({ usage: tk(0, 0), usageFinal: true, relayedOutputTokens: 5 }) }), { action: 'charge', estimated: true, tokens: { inputTokens: 300, outputTokens: 5 } }, 'zero usage after content was relayed is not believed');
  // Anthropic stream cut after message_start: reported input, relayed output
  t.match(settleCharge({ ...base, reading: reading({ usage: tk(40, 1), usageFinal: false, relayedOutputTokens: 25 }) }), { action: 'charge', estimated: true, tokens: { inputTokens: 40, outputTokens: 25 }, costMicros: 120 + 375 });
  // 6.04 (first case) and 6.02: no usage at all → prompt estimate + relayed, flagged, never $0
  const est = settleCharge({ ...base, reading: reading({ relayedOutputTokens: 50 }) });
  t.match(est, { action: 'charge', estimated: true, tokens: { inputTokens: 300, outputTokens: 50 }, costMicros: 900 + 750 });
  t.match(settleCharge({ ...base, reading: reading({}) }), { action: 'charge', estimated: true, costMicros: 900 }, 'nothing relayed still charges the prompt estimate');
  t.match(settleCharge({ ...base, reading: reading({ readable: false }) }), { action: 'charge', estimated: true, costMicros: 2400 }, 'an unreadable body charges the reservation');
  t.match(settleCharge({ ...base, reading: undefined }), { action: 'charge', estimated: true, costMicros: 2400 });
  t.match(settleCharge({ ...base, status: 429, reading: reading({ error: 'rate_limit_error' }) }), { action: 'charge', costMicros: 0, estimated: false }, 'a failed call without usage is not billed by the provider');
  t.match(settleCharge({ ...base, price: { ...price, fallback: true }, reading: reading({ usage: tk(1, 1), usageFinal: true }) }), { estimated: true }, 'a fallback price is always flagged');
});

t.test('priority processing: the tier the response reports prices the tokens', async (t) => {
  const priority = { input: 6_000_000, output: 30_000_000, cacheWrite: 6_000_000, cacheWrite1h: 6_000_000, cacheRead: 600_000 };
  const withPriority = { ...price, priority };
  const final = (over: Partial<UsageReading>) => reading({ usage: tk(100, 15), usageFinal: true, ...over });
  t.match(settleCharge({ ...base, price: withPriority, reading: final({ serviceTier: 'priority' }) }), { costMicros: 600 + 450, estimated: false }, 'answered at priority: priority rates');
  t.match(settleCharge({ ...base, price: withPriority, reading: final({ serviceTier: 'default' }) }), { costMicros: 300 + 225, estimated: false }, 'asked for priority, served at the default tier: standard rates');
  t.match(settleCharge({ ...base, price: withPriority, request: { ...request, serviceTier: 'priority' }, reading: final({}) }), { costMicros: 600 + 450 }, 'no tier in the response: the requested one');
  t.match(settleCharge({ ...base, price: withPriority, request: { ...request, serviceTier: 'priority' }, reading: final({ serviceTier: 'flex' }) }), { costMicros: 300 + 225 }, 'flex is charged at the standard rates');
  t.match(settleCharge({ ...base, reading: final({ serviceTier: 'priority' }) }), { costMicros: 300 + 225, estimated: true }, 'priority for a model without priority rates: standard, flagged estimated');
  t.match(settleCharge({ ...base, price: withPriority, reading: reading({ serviceTier: 'priority', relayedOutputTokens: 50 }) }), { estimated: true, costMicros: 1800 + 1500 }, 'the estimate uses the tier too');
});
