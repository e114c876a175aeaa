// The interception CA's private key must not be readable (or writable) by group or others
// (security case 7.11): loading the CA refuses such a key file with an error that names the file
// and its mode, the gateway does not start (no listener binds), and nothing "repairs" the file
// behind the operator's back. The same CA with mode 0600 (or 0400) loads and starts.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { loadGatewayConfig } from '../../../src/config/gateway-config.ts';
import { TollgateError } from '../../../src/errors.ts';
import { assembleGateway, type RunningGateway } from '../../../src/main.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { createCertificateAuthority, ensureCertificateAuthority, loadCertificateAuthority } from '../../../src/tls/certificate-authority.ts';
import { writeMinimalGatewayDir } from '../../helpers/minimal-gateway-dir.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'tollgate-ca-mode-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const certFile = path.join(root, 'certs', 'ca.pem');
const keyFile = path.join(root, 'certs', 'ca.key');
await createCertificateAuthority(certFile, keyFile);
const mode = (file: string) => statSync(file).mode & 0o777;

async function loadError(): Promise<unknown> {
  try {
    await loadCertificateAuthority(certFile, keyFile);
    return undefined;
  } catch (err) {
    return err;
  }
}

t.test('a new CA key is written 0600 and loads', async (t) => {
  t.equal(mode(keyFile).toString(8), '600');
  const ca = await loadCertificateAuthority(certFile, keyFile);
  t.match(ca.subject, /Tollgate Local CA/);
});

t.test('a key file group or others can read or write is refused, naming the file and the mode', async (t) => {
  const keyBefore = readFileSync(keyFile, 'utf8');
  for (const bad of [0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o700 | 0o044]) {
    chmodSync(keyFile, bad);
    const err = await loadError();
    const shown = (bad & 0o777).toString(8);
    t.type(err, TollgateError, `mode ${shown} is refused`);
    t.match(err, { code: 'TOLLGATE_ERR_STARTUP_UNSAFE' }, `mode ${shown}: an unsafe start, not a broken CA`);
    const message = String((err as Error | undefined)?.message);
    t.match(message, `the CA key ${keyFile} is readable by other users (mode ${shown})`, `mode ${shown}: the message names the file and the mode`);
    t.match(message, `chmod 600 ${keyFile}`, 'and says how to fix it');
    t.equal(mode(keyFile), bad & 0o777, 'the mode is left as it was (not silently changed)');
  }
  t.equal(readFileSync(keyFile, 'utf8'), keyBefore, 'the key file is untouched');
  for (const good of [0o600, 0o400]) {
    chmodSync(keyFile, good);
    t.equal(await loadError(), undefined, `mode ${good.toString(8)} loads`);
  }
  chmodSync(keyFile, 0o600);
});

t.test('ensureCertificateAuthority (the gateway start) refuses an existing 0644 key instead of replacing it', async (t) => {
  const keyBefore = readFileSync(keyFile, 'utf8');
  const certBefore = readFileSync(certFile, 'utf8');
  chmodSync(keyFile, 0o644);
  t.teardown(() => chmodSync(keyFile, 0o600));
  await t.rejects(ensureCertificateAuthority(certFile, keyFile), { code: 'TOLLGATE_ERR_STARTUP_UNSAFE', message: /mode 644/ });
  t.equal(readFileSync(keyFile, 'utf8'), keyBefore, 'the key is not replaced');
  t.equal(readFileSync(certFile, 'utf8'), certBefore, 'the certificate is not replaced');
});

t.test('the gateway does not start with a 0644 CA key: no listener binds', async (t) => {
  const dir = path.join(root, 'gateway');
  const { configFile, proxyPort, adminPort } = await writeMinimalGatewayDir(dir, 'team: alpha\nrules:\n  - { host: "*", action: deny }\n');
  mkdirSync(path.join(dir, 'certs'));
  writeFileSync(path.join(dir, 'certs', 'ca.pem'), readFileSync(certFile));
  writeFileSync(path.join(dir, 'certs', 'ca.key'), readFileSync(keyFile), { mode: 0o600 });
  const gwKey = path.join(dir, 'certs', 'ca.key');
  chmodSync(gwKey, 0o644);
  const config = loadGatewayConfig(configFile, {});
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: 'debug', write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const refusesConnections = (port: number) => new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('connect', () => { s.destroy(); resolve(false); });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });

  let started: RunningGateway | undefined;
  const err = await assembleGateway(config, logger, { dev: false }).then((gw) => { started = gw; return undefined; }, (e: unknown) => e);
  if (started) await started.stop(200); // the defence is gone: do not leave it listening
  t.match(err, {
    code: 'TOLLGATE_ERR_STARTUP_UNSAFE',
    message: `the CA key ${gwKey} is readable by other users (mode 644); run: chmod 600 ${gwKey}`,
  }, 'refused, naming the key file and its mode');
  t.notOk(logs.some((l) => l['msg'] === 'tollgate listening'), 'no "listening" log line');
  t.ok(await refusesConnections(proxyPort), 'nothing listens on the proxy port');
  t.ok(await refusesConnections(adminPort), 'nothing listens on the admin port');
  t.equal(mode(gwKey), 0o644, 'the key mode is not changed behind the operator\'s back');

  // The same directory with the key at 0600 starts: the mode was the only reason.
  chmodSync(gwKey, 0o600);
  const gw = await assembleGateway(config, logger, { dev: false });
  t.teardown(() => gw.stop(200));
  t.equal(gw.proxy.port, proxyPort, 'with mode 0600 the gateway starts on the same ports');
  t.notOk(await refusesConnections(proxyPort), 'and now listens');
});
