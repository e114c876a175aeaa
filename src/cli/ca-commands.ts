// Owns: `tollgate ca init|show|export` — the interception CA's life cycle from the command line.
import { Command } from 'commander';
import { loadGatewayConfig } from '../config/gateway-config.ts';

/** The certificate library (x509, WebCrypto) loads in a quarter of a second: only the ca verbs need it. */
const certificateAuthority = () => import('../tls/certificate-authority.ts');
import { TollgateError } from '../errors.ts';
import { addConfigOption, configPath } from './config-option.ts';

export function registerCaCommands(program: Command): void {
  const ca = program.command('ca').description('manage the interception certificate authority');
  addConfigOption(ca.command('init').description('create the CA (cert and 0600 key) at the paths of tollgate.yaml'))
    .action(async (opts: { config?: string }) => {
      const config = loadGatewayConfig(configPath(opts));
      await (await certificateAuthority()).createCertificateAuthority(config.ca.cert, config.ca.key);
      const loaded = await (await certificateAuthority()).loadCertificateAuthority(config.ca.cert, config.ca.key);
      process.stdout.write(`created ${config.ca.cert}\nfingerprint (SHA-256): ${loaded.fingerprint}\n`);
    });
  addConfigOption(ca.command('show').description('print the CA subject, fingerprint, expiry and paths'))
    .action(async (opts: { config?: string }) => {
      const config = loadGatewayConfig(configPath(opts));
      const loaded = await (await certificateAuthority()).loadCertificateAuthority(config.ca.cert, config.ca.key);
      process.stdout.write(
        `subject:     ${loaded.subject}\nfingerprint: ${loaded.fingerprint}\nexpires:     ${loaded.notAfter.toISOString()}\ncert:        ${config.ca.cert}\nkey:         ${config.ca.key}\n`,
      );
    });
  addConfigOption(ca.command('export').description('print the CA certificate (never the key) for clients to trust'))
    .option('--format <format>', 'output format: pem', 'pem')
    .action(async (opts: { config?: string; format: string }) => {
      if (opts.format !== 'pem') throw new TollgateError('TOLLGATE_ERR_USAGE', `unknown format "${opts.format}" (supported: pem)`);
      const config = loadGatewayConfig(configPath(opts));
      const loaded = await (await certificateAuthority()).loadCertificateAuthority(config.ca.cert, config.ca.key);
      process.stdout.write(loaded.certPem);
    });
}
