// Test-only: a real Tollgate started in-process on loopback (ephemeral ports, a temp data dir,
// its own CA), with log lines captured for assertions.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadGatewayConfig } from '../../src/config/gateway-config.ts';
import { assembleGateway, type RunningGateway } from '../../src/main.ts';
import { createLogger } from '../../src/observability/logger.ts';

export interface TestGateway {
  gw: RunningGateway;
  dir: string;
  proxyUrl: string;
  proxyPort: number;
  adminUrl: string;
  caPem: string;
  caFile: string;
  logs: Array<Record<string, unknown>>;
  /** Raw log text, for canary scans. */
  logText: () => string;
  exchanges: () => Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface TestGatewayOptions {
  /** hostname → 127.0.0.1:port */
  upstreams?: Record<string, number | string>;
  upstreamCaPem?: string;
  /** Extra top-level YAML appended to tollgate.yaml. */
  extraYaml?: string;
  /** Files to write into the config dir: relative path → content (org.yaml, policies/*.yaml, secrets/*). */
  files?: Record<string, string>;
  env?: Record<string, string>;
}

export async function startTestGateway(opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-test-'));
  mkdirSync(path.join(dir, 'policies'), { recursive: true });
  const lines: string[] = [];
  if (opts.upstreamCaPem) writeFileSync(path.join(dir, 'upstream-ca.pem'), opts.upstreamCaPem);
  for (const [rel, content] of Object.entries(opts.files ?? {})) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), content);
  }
  const upstreams = Object.entries(opts.upstreams ?? {})
    .map(([h, p]) => `  ${h}: ${typeof p === 'number' ? `127.0.0.1:${p}` : p}`)
    .join('\n');
  const yaml = [
    'listen: { proxy: 127.0.0.1:0, admin: 127.0.0.1:0 }',
    'data_dir: ./data',
    'ca: { cert: ./certs/ca.pem, key: ./certs/ca.key }',
    upstreams ? `upstreams:\n${upstreams}` : '',
    opts.upstreamCaPem ? 'tls: { upstream_ca: [./upstream-ca.pem] }' : '',
    'timeouts: { connect_ms: 2000, first_byte_ms: 3000, idle_ms: 5000, headers_ms: 3000, shutdown_ms: 2000 }',
    opts.extraYaml ?? '',
  ].filter(Boolean).join('\n');
  writeFileSync(path.join(dir, 'tollgate.yaml'), yaml + '\n');
  const config = loadGatewayConfig(path.join(dir, 'tollgate.yaml'), { ...process.env, ...opts.env });
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'debug',
    write: (line) => {
      lines.push(line);
      logs.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  const gw = await assembleGateway(config, logger, { dev: false });
  const { readFileSync } = await import('node:fs');
  return {
    gw,
    dir,
    proxyUrl: `http://127.0.0.1:${gw.proxy.port}`,
    proxyPort: gw.proxy.port,
    adminUrl: `http://127.0.0.1:${gw.admin.port}`,
    caPem: gw.ca.certPem,
    caFile: config.ca.cert,
    logs,
    logText: () => lines.join(''),
    exchanges: () => logs.filter((l) => l['msg'] === 'exchange'),
    async stop() {
      await gw.stop(500);
      rmSync(dir, { recursive: true, force: true });
      void readFileSync;
    },
  };
}
