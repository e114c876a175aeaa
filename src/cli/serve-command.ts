// Owns: `tollgate serve` — load and validate the config, start the gateway, and stop it
// gracefully on SIGTERM/SIGINT (a second signal forces exit).
import { Command } from 'commander';
import { loadGatewayConfig } from '../config/gateway-config.ts';
import { createLogger } from '../observability/logger.ts';
import { stdoutLineWriter } from '../observability/line-writer.ts';
import { addConfigOption, configPath } from './config-option.ts';

export function registerServeCommand(program: Command): void {
  addConfigOption(program.command('serve').description('run the gateway (proxy and admin listeners)'))
    .option('--dev', 'development mode: embedded SSO issuer with the demo users (loopback only)')
    .action(async (opts: { config?: string; dev?: boolean }) => {
      const config = loadGatewayConfig(configPath(opts));
      const lines = stdoutLineWriter();
      const logger = createLogger({ level: config.log.level, write: lines.write });
      // Loaded here, not at the top: the gateway's modules take over a second to load, which every
      // other verb of the CLI would pay for nothing.
      const { assembleGateway } = await import('../main.ts');
      const gateway = await assembleGateway(config, logger, { dev: opts.dev === true });
      await new Promise<void>((resolve) => {
        let stopping = false;
        const onSignal = (signal: string) => {
          if (stopping) {
            logger.warn('second signal: exiting now', { signal });
            process.exit(1);
          }
          stopping = true;
          logger.info('signal received', { signal });
          void gateway.stop().then(resolve, (err: unknown) => {
            logger.error('shutdown failed', { error: String(err) });
            resolve();
          });
        };
        process.on('SIGTERM', () => onSignal('SIGTERM'));
        process.on('SIGINT', () => onSignal('SIGINT'));
      });
    });
}
