// parseLlmRequest: how many completions a request can be billed for (n, best_of, capped at 128),
// per API. The general request-parsing cases live in endpoints-and-requests.test.ts.
import t from 'tap';
import type { LlmApi } from '../../../src/metering/endpoints.ts';
import { parseLlmRequest } from '../../../src/metering/llm-request.ts';

t.test('choices per API', async (t) => {
  const cases: [LlmApi, Record<string, unknown>, number, number | undefined][] = [
    ['openai_completions', { model: 'i', prompt: 'x' }, 1, 16],
    ['openai_completions', { model: 'i', prompt: 'x', n: 3, max_tokens: 5 }, 3, 5],
    ['openai_completions', { model: 'i', prompt: 'x', best_of: 5, n: 2 }, 5, 16],
    ['openai_completions', { model: 'i', prompt: 'x', best_of: 0, n: 2 }, 2, 16],
    ['openai_completions', { model: 'i', prompt: 'x', best_of: 500 }, 128, 16],
    ['openai_chat', { model: 'c', messages: [], best_of: 7 }, 1, undefined],
    ['openai_chat', { model: 'c', messages: [], n: 1000 }, 128, undefined],
    ['anthropic_messages', { model: 'a', max_tokens: 9, n: 4 }, 1, 9],
    ['openai_responses', { model: 'r', input: 'x', n: 4 }, 1, undefined],
    ['openai_embeddings', { model: 'e', input: 'x', n: 4 }, 1, 0],
  ];
  for (const [api, body, choices, maxOutputTokens] of cases) {
    const r = parseLlmRequest(api, Buffer.from(JSON.stringify(body)));
    t.match(r, { ok: true, request: { choices } }, `${api} ${JSON.stringify(body)}: choices`);
    if (r.ok) t.equal(r.request.maxOutputTokens, maxOutputTokens, `${api} ${JSON.stringify(body)}: max output`);
  }
});
