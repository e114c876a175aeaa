import t from 'tap';
import { detectEndpoint, type OpenAiCompatibleBase } from '../../../src/metering/endpoints.ts';
import { unmeteredSpendEndpoint } from '../../../src/metering/unmetered-spend.ts';

const compat: OpenAiCompatibleBase[] = [
  { name: 'together', host: 'api.together.xyz', port: 443, pathPrefix: '/v1', priceTable: 'together' },
  { name: 'local', host: 'llm.internal', port: 8080, pathPrefix: '/OpenAI/V1', priceTable: 'local' },
];

t.test('billable endpoints Tollgate cannot meter', async (t) => {
  // host, method, path → what (a fragment of it), or undefined when the request may pass
  const rows: Array<[string, string, string | undefined, string | undefined]> = [
    ['api.anthropic.com', 'POST', '/v1/messages/batches', 'Message Batches'],
    ['api.anthropic.com', 'POST', '/v1/messages/batches/', 'Message Batches'],
    ['api.anthropic.com', 'POST', '/V1/Messages/Batches', 'Message Batches'],
    ['api.anthropic.com', 'post', '/v1/messages/batches', 'Message Batches'],
    ['api.anthropic.com', 'POST', '/v1/complete', 'Text Completions'],
    ['api.anthropic.com', 'GET', '/v1/messages/batches', undefined],
    ['api.anthropic.com', 'GET', '/v1/messages/batches/msgbatch_1/results', undefined],
    ['api.anthropic.com', 'POST', '/v1/messages/batches/msgbatch_1/cancel', undefined],
    ['api.anthropic.com', 'POST', '/v1/messages', undefined],
    ['api.anthropic.com', 'POST', '/v1/messages/count_tokens', undefined],
    ['api.anthropic.com', 'POST', '/v1/files', undefined],
    ['api.anthropic.com', 'GET', '/api/claude_code/settings', undefined],
    ['api.anthropic.com', 'POST', '/api/event_logging/batch', undefined],
    ['api.anthropic.com', 'POST', undefined, undefined],
    ['api.openai.com', 'POST', '/v1/batches', 'Batch API'],
    ['api.openai.com', 'POST', '/V1/BATCHES', 'Batch API'],
    ['api.openai.com', 'GET', '/v1/batches', undefined],
    ['api.openai.com', 'POST', '/v1/batches/batch_1/cancel', undefined],
    ['api.openai.com', 'POST', '/v1/fine_tuning/jobs', 'fine-tuning'],
    ['api.openai.com', 'GET', '/v1/fine_tuning/jobs', undefined],
    ['api.openai.com', 'POST', '/v1/images/generations', 'Images'],
    ['api.openai.com', 'POST', '/v1/images/edits', 'Images'],
    ['api.openai.com', 'POST', '/v1/images/variations', 'Images'],
    ['api.openai.com', 'POST', '/v1/audio/speech', 'Audio'],
    ['api.openai.com', 'POST', '/v1/audio/transcriptions', 'Audio'],
    ['api.openai.com', 'POST', '/v1/audio/translations', 'Audio'],
    ['api.openai.com', 'GET', '/v1/realtime', 'Realtime'],
    ['api.openai.com', 'POST', '/v1/realtime/sessions', 'Realtime'],
    ['api.openai.com', 'POST', '/v1/realtime/transcription_sessions', 'Realtime'],
    ['api.openai.com', 'POST', '/v1/realtime/client_secrets', 'Realtime'],
    ['api.openai.com', 'POST', '/v1/realtime/calls', 'Realtime'],
    ['api.openai.com', 'POST', '/v1/realtime/calls/call_1/accept', 'Realtime'],
    ['api.openai.com', 'POST', '/v1/realtime/calls/call_1/hangup', undefined],
    ['api.openai.com', 'POST', '/v1/live/sessions', 'Live API'],
    ['api.openai.com', 'POST', '/v1/responses/compact', 'compaction'],
    ['api.openai.com', 'POST', '/v1/responses/resp_1/cancel', undefined],
    ['api.openai.com', 'POST', '/v1/responses/input_tokens', undefined],
    ['api.openai.com', 'POST', '/v1/threads/runs', 'Assistants runs'],
    ['api.openai.com', 'POST', '/v1/threads/thread_1/runs', 'Assistants runs'],
    ['api.openai.com', 'POST', '/v1/threads/thread_1/runs/run_1/submit_tool_outputs', 'Assistants runs'],
    ['api.openai.com', 'POST', '/v1/threads/thread_1/runs/run_1/cancel', undefined],
    ['api.openai.com', 'POST', '/v1/threads/thread_1/messages', undefined],
    ['api.openai.com', 'POST', '/v1/videos', 'Videos'],
    ['api.openai.com', 'POST', '/v1/videos/video_1/remix', 'Videos'],
    ['api.openai.com', 'POST', '/v1/evals/eval_1/runs', 'eval runs'],
    ['api.openai.com', 'POST', '/v1/containers', 'containers'],
    ['api.openai.com', 'POST', '/v1/chat/completions', undefined],
    ['api.openai.com', 'POST', '/v1/files', undefined],
    ['api.openai.com', 'POST', '/v1/moderations', undefined],
    ['api.openai.com', 'GET', '/v1/models', undefined],
    ['api.openai.com', 'POST', '/batches', undefined],
    ['api.openai.com', 'POST', '/v2/batches', undefined],
    ['api.together.xyz', 'POST', '/v1/batches', 'Batch API'],
    ['api.together.xyz', 'POST', '/v1/images/generations', 'Images'],
    ['api.together.xyz', 'POST', '/batches', undefined],
    ['llm.internal', 'POST', '/openai/v1/batches', 'Batch API'],
    ['llm.internal', 'POST', '/v1/batches', undefined],
    ['evil.example', 'POST', '/v1/batches', undefined],
    ['evil.example', 'POST', '/v1/messages/batches', undefined],
  ];
  for (const [host, method, path, what] of rows) {
    const port = host === 'llm.internal' ? 8080 : 443;
    const got = unmeteredSpendEndpoint({ host, port, method, path }, compat);
    if (what === undefined) t.equal(got, undefined, `${method} ${host}${path ?? ''} passes`);
    else t.match(got?.what, new RegExp(what), `${method} ${host}${path ?? ''} is ${what}`);
  }
  t.match(unmeteredSpendEndpoint({ host: 'api.together.xyz', port: 443, method: 'POST', path: '/v1/batches' }, compat), { provider: 'together' });
  t.match(unmeteredSpendEndpoint({ host: 'api.anthropic.com', port: 443, method: 'POST', path: '/v1/complete' }), { provider: 'anthropic' });
  t.match(unmeteredSpendEndpoint({ host: 'api.openai.com', port: 443, method: 'POST', path: '/v1/batches' }), { provider: 'openai' });
  t.equal(unmeteredSpendEndpoint({ host: 'api.together.xyz', port: 8443, method: 'POST', path: '/v1/batches' }, compat), undefined, 'another port is another base');
  t.equal(unmeteredSpendEndpoint({ host: 'api.openai.com', port: 443, method: 'POST', path: '/' }), undefined);
});

t.test('every protocol upgrade to a provider host is unmeterable', async (t) => {
  const up = (host: string, path: string, port = 443) => unmeteredSpendEndpoint({ host, port, method: 'GET', path, upgrade: true }, compat);
  t.match(up('api.openai.com', '/v1/responses'), { provider: 'openai', what: /WebSocket/ }, 'the Responses API WebSocket mode');
  t.match(up('api.openai.com', '/v1/live/sessions'), { provider: 'openai' });
  t.match(up('api.openai.com', '/anything'), { provider: 'openai' });
  t.match(up('api.anthropic.com', '/v1/messages'), { provider: 'anthropic' });
  t.match(up('llm.internal', '/openai/v1/realtime', 8080), { provider: 'local' });
  t.equal(up('llm.internal', '/openai/v1/realtime', 8443), undefined, 'another port is another host');
  t.equal(up('echo.example', '/ws'), undefined, 'other hosts are not concerned');
  t.equal(unmeteredSpendEndpoint({ host: 'api.openai.com', port: 443, method: 'GET', path: '/v1/responses', upgrade: false }), undefined, 'a plain GET lists or reads');
});

t.test('no path is both metered and refused as unmeterable', async (t) => {
  const paths = ['/v1/messages', '/v1/chat/completions', '/v1/responses', '/v1/completions', '/v1/embeddings', '/v1/batches', '/v1/messages/batches', '/v1/images/generations'];
  for (const host of ['api.anthropic.com', 'api.openai.com', 'api.together.xyz']) {
    for (const path of paths) {
      const req = { host, port: 443, method: 'POST', path };
      t.notOk(detectEndpoint(req, compat) && unmeteredSpendEndpoint(req, compat), `${host}${path}`);
    }
  }
});

t.test('model endpoints are found without regard to case', async (t) => {
  t.match(detectEndpoint({ host: 'api.anthropic.com', port: 443, method: 'POST', path: '/V1/Messages' }), { api: 'anthropic_messages' });
  t.match(detectEndpoint({ host: 'api.openai.com', port: 443, method: 'POST', path: '/v1/Chat/Completions' }), { api: 'openai_chat' });
  t.match(detectEndpoint({ host: 'llm.internal', port: 8080, method: 'POST', path: '/openai/v1/responses' }, compat), { provider: 'local', api: 'openai_responses' });
});
