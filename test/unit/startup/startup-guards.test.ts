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
