// Owns: the `tollgate` command line — argument parsing into library calls, exit codes, and
// printing. No business logic: every verb calls a function of another module.
import { Command, CommanderError } from 'commander';
import { registerAuditCommands } from './audit-commands.ts';
import { registerCostsCommand } from './costs-command.ts';
import { registerBudgetsCommand } from './budgets-command.ts';
import { registerPilotCommand } from './pilot-command.ts';
import { registerCaCommands } from './ca-commands.ts';
import { registerLoginCommands } from './login-command.ts';
import { registerPolicyCommands } from './policy-commands.ts';
import { registerServeCommand } from './serve-command.ts';
import { registerTokenCommands } from './token-commands.ts';
import { registerSessionCommands } from './session-commands.ts';
import { registerIdentityCommands } from './identity-commands.ts';
import { registerRunCommand } from './run-command.ts';
import { registerEnvCommand } from './env-command.ts';
import { registerSetupCommand } from './setup-command.ts';
import { registerAgentCommands } from './agent-commands.ts';
import { printError } from './print-error.ts';

export function buildProgram(): Command {
  const program = new Command('tollgate')
    .description('Tollgate: the policy-enforcing egress gateway for AI agents')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .showHelpAfterError();
  registerServeCommand(program);
  registerCaCommands(program);
  registerPolicyCommands(program);
  registerTokenCommands(program);
  registerSessionCommands(program);
  registerIdentityCommands(program);
  registerLoginCommands(program);
  registerRunCommand(program);
  registerEnvCommand(program);
  registerSetupCommand(program);
  registerAgentCommands(program);
  registerAuditCommands(program);
  registerCostsCommand(program);
  registerBudgetsCommand(program);
  registerPilotCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    return printError(err);
  }
}
