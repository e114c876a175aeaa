// The gateway refuses to start with settings that silently weaken it (security case 7.11, 2.16).
import t from 'tap';
import { parseGatewayConfig, type GatewayConfig } from '../../../src/config/gateway-config.ts';
import { TollgateError } from '../../../src/errors.ts';
import { adminHostNames, assertAdminExposureSafe, assertLoopbackOnly, assertSafeRuntime } from '../../../src/main.ts';

function config(yaml: string): GatewayConfig {
  const r = parseGatewayConfig('/tmp/tollgate.yaml', yaml, {});
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.config;
}

const code = (f: () => void): string | undefined => {
  try {
    f();
    return undefined;
  } catch (err) {
    return err instanceof TollgateError ? err.code : 'not a TollgateError';
  }
};

t.test('runtime flags that disable checks are refused', async (t) => {
  t.equal(code(() => assertSafeRuntime({ NODE_TLS_REJECT_UNAUTHORIZED: '0' }, [])), 'TOLLGATE_ERR_STARTUP_UNSAFE');
  t.equal(code(() => assertSafeRuntime({ NODE_OPTIONS: '--max-old-space-size=512 --insecure-http-parser' }, [])), 'TOLLGATE_ERR_STARTUP_UNSAFE');
  t.equal(code(() => assertSafeRuntime({}, ['--insecure-http-parser'])), 'TOLLGATE_ERR_STARTUP_UNSAFE');
  t.equal(code(() => assertSafeRuntime({ NODE_TLS_REJECT_UNAUTHORIZED: '1', NODE_OPTIONS: '--enable-source-maps' }, ['--import=tsx'])), undefined);
});

t.test('an admin listener beyond loopback needs authentication on /metrics', async (t) => {
  t.equal(code(() => assertAdminExposureSafe(config('listen: { admin: 0.0.0.0:9090 }\n'))), 'TOLLGATE_ERR_STARTUP_UNSAFE');
  t.equal(code(() => assertAdminExposureSafe(config('listen: { admin: 10.1.2.3:9090 }\n'))), 'TOLLGATE_ERR_STARTUP_UNSAFE');
  t.equal(code(() => assertAdminExposureSafe(config('listen: { admin: 0.0.0.0:9090 }\nmetrics: { bearer_token_secret: metrics-token }\n'))), undefined);
  t.equal(code(() => assertAdminExposureSafe(config('listen: { admin: 127.0.0.1:9090 }\n'))), undefined);
});

t.test('dev mode listens on loopback only', async (t) => {
  t.equal(code(() => assertLoopbackOnly(config('listen: { proxy: 0.0.0.0:3128 }\n'))), 'TOLLGATE_ERR_STARTUP_UNSAFE');
  t.equal(code(() => assertLoopbackOnly(config('listen: { admin: 192.168.1.10:9090 }\n'))), 'TOLLGATE_ERR_STARTUP_UNSAFE');
  t.equal(code(() => assertLoopbackOnly(config('listen: { proxy: 127.0.0.1:3128, admin: 127.0.0.2:9090 }\n'))), undefined);
});

t.test('the admin listener answers to its own names only', async (t) => {
  t.same(adminHostNames(config('listen: { admin: 127.0.0.1:9090 }\n')), ['127.0.0.1']);
  t.same(adminHostNames(config('listen: { admin: 0.0.0.0:9090 }\nmetrics: { bearer_token_secret: m }\nsso: { public_url: "https://Tollgate.Acme.example/" }\n')), ['tollgate.acme.example']);
  t.same(adminHostNames(config('listen: { admin: "[::1]:9090" }\n')), ['[::1]']);
});

t.test('a Node.js below the patched floor of its line is refused (7.11), unless explicitly allowed', async (t) => {
  const rows: Array<[string, 'refused' | 'ok']> = [
    ['20.20.2', 'ok'], ['20.20.10', 'ok'], ['20.21.0', 'ok'], ['20.20.1', 'refused'], ['20.19.5', 'refused'], ['20.11.0', 'refused'],
    ['22.22.2', 'ok'], ['22.22.1', 'refused'], ['22.23.0', 'ok'], ['24.14.1', 'ok'], ['24.14.0', 'refused'], ['24.15.0', 'ok'],
    ['25.8.2', 'ok'], ['25.8.1', 'refused'], ['26.0.0', 'ok'], ['30.1.2', 'ok'],
    ['18.20.8', 'refused'], ['21.7.3', 'refused'], ['23.11.1', 'refused'], ['not-a-version', 'refused'], ['v20.20.2', 'ok'],
  ];
  for (const [version, want] of rows) {
    t.equal(code(() => assertSafeRuntime({}, [], version)), want === 'ok' ? undefined : 'TOLLGATE_ERR_STARTUP_UNSAFE', `Node.js ${version}: ${want}`);
  }
  t.match(code(() => assertSafeRuntime({}, [], '20.19.5')), 'TOLLGATE_ERR_STARTUP_UNSAFE');
  let message = '';
  try { assertSafeRuntime({}, [], '20.19.5'); } catch (err) { message = (err as Error).message; }
  t.match(message, /20\.20\.2 or later.*TOLLGATE_ALLOW_UNPATCHED_NODE=1/, 'the refusal names the floor and the way to start anyway');
  const warnings = assertSafeRuntime({ TOLLGATE_ALLOW_UNPATCHED_NODE: '1' }, [], '20.19.5');
  t.equal(warnings.length, 1, 'allowed: one warning to log');
  t.match(warnings[0], /starting anyway/);
  t.same(assertSafeRuntime({}, [], process.versions.node), [], 'the Node.js running these tests is at or above its floor');
  t.equal(code(() => assertSafeRuntime({ TOLLGATE_ALLOW_UNPATCHED_NODE: '1' }, ['--insecure-http-parser'], '20.19.5')), 'TOLLGATE_ERR_STARTUP_UNSAFE', 'the escape is for the version only');
});
