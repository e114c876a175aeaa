// Test-only: a gateway directory on disk as an operator would lay it out — tollgate.yaml listening
// on two free loopback ports (CA under ./certs, data under ./data), org.yaml with team `alpha`, and
// policies/alpha.yaml — for tests that start `tollgate serve` or assembleGateway on their own.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { unusedPort } from './unused-port.ts';

export async function writeMinimalGatewayDir(dir: string, alphaPolicy: string): Promise<{ configFile: string; proxyPort: number; adminPort: number }> {
  mkdirSync(path.join(dir, 'policies'), { recursive: true });
  const [proxyPort, adminPort] = [await unusedPort(), await unusedPort()];
  const configFile = path.join(dir, 'tollgate.yaml');
  writeFileSync(configFile, [
    `listen: { proxy: 127.0.0.1:${proxyPort}, admin: 127.0.0.1:${adminPort} }`,
    'data_dir: ./data',
    'ca: { cert: ./certs/ca.pem, key: ./certs/ca.key }',
    '',
  ].join('\n'));
  writeFileSync(path.join(dir, 'org.yaml'), 'organization: Test Org\nteams:\n  alpha: { name: Alpha, idp_groups: [alpha], policy: policies/alpha.yaml }\n');
  writeFileSync(path.join(dir, 'policies', 'alpha.yaml'), alphaPolicy);
  return { configFile, proxyPort, adminPort };
}
