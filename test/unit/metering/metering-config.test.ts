import t from 'tap';
import { parseGatewayConfig } from '../../../src/config/gateway-config.ts';
import { formatProblem } from '../../../src/errors.ts';

t.test('metering keys: defaults, OpenAI-compatible bases, fallback price', async (t) => {
  const d = parseGatewayConfig('tollgate.yaml', 'data_dir: ./d\n', {});
  t.ok(d.ok);
  if (d.ok) t.same(d.config.metering, { unknownModel: 'refuse', fallbackPrice: undefined, openaiCompatible: [], drainMs: 30_000, drainBytes: 16 * 1024 * 1024, providerSideInputTokens: 200_000, unmeteredEndpoints: 'refuse', maxRequestBytes: 32 * 1024 * 1024, thresholds: [50, 80, 100] });
  const r = parseGatewayConfig('tollgate.yaml', [
    'metering:',
    '  unknown_model: fallback',
    '  fallback_price: { input: 15, output: 75 }',
    '  openai_compatible: [ { name: together, base_url: "https://API.Together.xyz/v1/" }, { name: vllm, base_url: "http://10.0.0.5:8000", prices: openai } ]',
    '  thresholds: [100, 80, 80]',
    '  unmetered_endpoints: allow',
    '',
  ].join('\n'), {});
  t.ok(r.ok);
  if (r.ok) {
    t.same(r.config.metering.openaiCompatible, [
      { name: 'together', host: 'api.together.xyz', port: 443, pathPrefix: '/v1', priceTable: 'together' },
      { name: 'vllm', host: '10.0.0.5', port: 8000, pathPrefix: '', priceTable: 'openai' },
    ]);
    t.same(r.config.metering.thresholds, [80, 100]);
    t.same(r.config.metering.fallbackPrice, { input: 15, output: 75 });
    t.equal(r.config.metering.unmeteredEndpoints, 'allow');
  }
  const rows: Array<[string, RegExp]> = [
    ['metering: { unknown_model: fallback }\n', /tollgate\.yaml:1:\d+: metering\.unknown_model: fallback needs metering\.fallback_price/],
    ['metering: { unknown_model: maybe }\n', /tollgate\.yaml:1:\d+: metering\.unknown_model/],
    ['metering: { fallback_price: { input: 0, output: 1 } }\n', /tollgate\.yaml:1:\d+: metering\.fallback_price\.input/],
    ['metering:\n  openai_compatible: [ { name: x, base_url: "https://api.openai.com/v1" } ]\n', /tollgate\.yaml:2:\d+: .*metered already/],
    ['metering: { drain_ms: -1 }\n', /metering\.drain_ms/],
    ['metering: { unmetered_endpoints: yes }\n', /tollgate\.yaml:1:\d+: metering\.unmetered_endpoints/],
  ];
  for (const [text, want] of rows) {
    const bad = parseGatewayConfig('tollgate.yaml', text, {});
    t.notOk(bad.ok, text);
    if (!bad.ok) t.match(bad.problems.map(formatProblem).join('\n'), want, text);
  }
});
