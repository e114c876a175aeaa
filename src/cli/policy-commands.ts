// Owns: `tollgate policy check|test|explain` — for people and for CI in the policy repository.
import { Command } from 'commander';
import path from 'node:path';
import { loadGatewayConfig } from '../config/gateway-config.ts';
import { policyCheck, policyDiff, policyExplain, policyTest } from '../config/policy-tools.ts';
import { addConfigOption, configPath } from './config-option.ts';
import { existsSync } from 'node:fs';

/** org.yaml and the policies folder: from DIR (a policy repo checkout) or from tollgate.yaml. */
function policyPaths(dir: string | undefined, opts: { config?: string }): { orgFile: string; policiesDir: string } {
  if (dir !== undefined) {
    const root = path.resolve(dir);
    const orgFile = existsSync(path.join(root, 'org.yaml')) ? path.join(root, 'org.yaml') : path.join(root, '..', 'org.yaml');
    const policiesDir = existsSync(path.join(root, 'policies')) ? path.join(root, 'policies') : root;
    return { orgFile, policiesDir };
  }
  const config = loadGatewayConfig(configPath(opts));
  return { orgFile: config.org, policiesDir: config.policies };
}

export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('check, test and explain the organisation and team policies');
  addConfigOption(policy.command('check').description('validate org.yaml and every policy file; errors as file:line:col (exit 1 when invalid)'))
    .argument('[dir]', 'folder holding org.yaml and policies/ (default: the paths of tollgate.yaml)')
    .action((dir: string | undefined, opts: { config?: string }) => {
      const r = policyCheck(policyPaths(dir, opts));
      (r.exitCode === 0 ? process.stdout : process.stderr).write(r.text);
      process.exitCode = r.exitCode;
    });
  addConfigOption(policy.command('test').description('run policies/tests/*.yaml against the compiled policy (exit 1 on a failure)'))
    .argument('[dir]', 'folder holding org.yaml and policies/ (default: the paths of tollgate.yaml)')
    .action((dir: string | undefined, opts: { config?: string }) => {
      const r = policyTest(policyPaths(dir, opts));
      process.stdout.write(r.text);
      process.exitCode = r.exitCode;
    });
  policy.command('diff')
    .description('which test requests (of both trees) change decision between two policy trees (exit 1 when some do)')
    .argument('<old>', 'folder holding the old org.yaml and policies/ (e.g. a checkout of main)')
    .argument('<new>', 'folder holding the new org.yaml and policies/')
    .action((oldDir: string, newDir: string) => {
      const r = policyDiff(policyPaths(oldDir, {}), policyPaths(newDir, {}));
      process.stdout.write(r.text);
      process.exitCode = r.exitCode;
    });
  addConfigOption(policy.command('explain').description('print the decision for one request, the rule (file:line) and the credentials it would get (by name)'))
    .requiredOption('--team <team>', 'team to decide for')
    .option('--project <project>', 'project scope')
    .option('--agent <agent>', 'managed agent (its rules narrow the team policy)')
    .option('--dir <dir>', 'folder holding org.yaml and policies/')
    .argument('<method>', 'HTTP method, e.g. GET')
    .argument('<url>', 'absolute URL, e.g. https://api.github.com/user')
    .action((method: string, url: string, opts: { config?: string; team: string; project?: string; agent?: string; dir?: string }) => {
      const r = policyExplain(policyPaths(opts.dir, opts), { team: opts.team, project: opts.project, agent: opts.agent, method, url });
      (r.exitCode === 0 ? process.stdout : process.stderr).write(r.text);
      process.exitCode = r.exitCode;
    });
}
