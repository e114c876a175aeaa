// Owns: `tollgate setup <tool> [--print]` — write (Claude Code, kubectl) or print (the others) a
// desktop tool's settings for the gateway — and `tollgate setup --check [tool]`, which verifies
// the configuration with a request through the gateway read back from the audit trail.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { TollgateError } from '../errors.ts';
import { mergeClaudeSettings, SettingsShapeError } from '../onboarding/claude-settings.ts';
import { resolveClient } from '../onboarding/resolve-client.ts';
import { claudeSettingsFile, runSetupCheck } from '../onboarding/run-setup-check.ts';
import { setupKubectl } from '../onboarding/setup-kubectl.ts';
import { isToolName, toolInstructions, TOOLS, type ToolName } from '../onboarding/tool-instructions.ts';
import { writeFileAtomic } from '../store/write-file-atomic.ts';
import { addConfigOption } from './config-option.ts';

function readJson(file: string): unknown {
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new TollgateError('TOLLGATE_ERR_USAGE', `${file} is not valid JSON (${(err as Error).message}); fix it first — tollgate never overwrites a file it cannot read`);
  }
}

interface SetupOptions {
  config?: string;
  print?: boolean;
  check?: boolean;
  team?: string;
  project?: string;
  caFile?: string;
  kubeconfig?: string;
}

function setupClaudeCode(opts: SetupOptions): void {
  const client = resolveClient({ team: opts.team, project: opts.project, caFile: opts.caFile, configFile: opts.config });
  const ctx = { proxyUrl: client.proxyUrl, caBundlePath: client.caBundlePath };
  const file = claudeSettingsFile();
  let merged;
  try {
    merged = mergeClaudeSettings(readJson(file), ctx);
  } catch (err) {
    if (err instanceof SettingsShapeError) throw new TollgateError('TOLLGATE_ERR_USAGE', `${file}: ${err.message}`);
    throw err;
  }
  if (opts.print) {
    process.stdout.write(`# ${file} after \`tollgate setup claude-code\` (not written: --print)\n`);
    process.stdout.write(`${JSON.stringify(merged.settings, null, 2)}\n`);
    return;
  }
  if (merged.changes.length === 0) {
    process.stdout.write(`${file} already points Claude Code at the gateway; nothing changed\n`);
    return;
  }
  mkdirSync(path.dirname(file), { recursive: true });
  if (existsSync(file)) writeFileAtomic(`${file}.tollgate-backup`, readFileSync(file, 'utf8'));
  writeFileAtomic(file, `${JSON.stringify(merged.settings, null, 2)}\n`);
  process.stdout.write(`updated ${file}${existsSync(`${file}.tollgate-backup`) ? ` (previous version: ${file}.tollgate-backup)` : ''}:\n${merged.changes.map((c) => `  ${c}\n`).join('')}` +
    'Restart Claude Code to pick it up.\n');
}

function setupKubectlCommand(opts: SetupOptions): void {
  if (opts.project === undefined) throw new TollgateError('TOLLGATE_ERR_USAGE', 'tollgate setup kubectl needs --project P (the project whose Kubernetes connections to write)');
  const r = setupKubectl({ project: opts.project, team: opts.team, caFile: opts.caFile, configFile: opts.config, kubeconfig: opts.kubeconfig, print: opts.print });
  const notes = r.skipped.map((s) => `note: connection ${s.connection} skipped: ${s.reason}\n`).join('');
  if (!r.written) {
    process.stdout.write(`# ${r.file} after \`tollgate setup kubectl\` (not written: --print; credentials in URLs shown as ***, users' secrets as REDACTED, comments left out)\n${r.redactedText ?? ''}${notes}`);
    return;
  }
  const kc = r.file.includes(' ') ? `'${r.file}'` : r.file;
  process.stdout.write(
    `wrote ${r.file} (mode 0600: it holds your gateway token, and no Kubernetes credentials):\n` +
    `${r.changes.map((c) => `  ${c}\n`).join('')}${notes}` +
    `Use it:\n  KUBECONFIG=${kc} kubectl get pods\n` +
    (r.contexts.length > 1 ? `  KUBECONFIG=${kc} kubectl --context ${r.contexts[1]} get pods\n` : '') +
    'The gateway verifies each API server against its connection\'s CA and injects the cluster token.\n' +
    '`kubectl config view` shows each cluster\'s proxy-url with your gateway token in it: a token for the gateway\n' +
    'only, not a Kubernetes credential, but keep the file to yourself. Run this again after `tollgate login`: it\n' +
    'puts the new token in every tollgate-* cluster of this gateway in the file.\n',
  );
}

export function registerSetupCommand(program: Command): void {
  addConfigOption(program.command('setup')
    .description(`configure a desktop tool for the gateway (${TOOLS.join(', ')}), or verify it with --check`))
    .argument('[tool]', TOOLS.join(' | '))
    .option('--check', 'verify: send a request through the gateway with your configuration (the tool\'s own settings for claude-code) and read it back from the audit trail; exit 1 on any failure')
    .option('--print', 'only print the settings; change no file')
    .option('--team <team>', 'act for this team (default: your only team)')
    .option('--project <project>', 'act for this project of the team (kubectl: required)')
    .option('--ca-file <file>', "the gateway's CA certificate")
    .option('--kubeconfig <file>', 'kubectl: the kubeconfig to write (default ~/.kube/tollgate-config)')
    .action(async (tool: string | undefined, opts: SetupOptions) => {
      if (tool !== undefined && !isToolName(tool)) throw new TollgateError('TOLLGATE_ERR_USAGE', `unknown tool "${tool}"; one of ${TOOLS.join(', ')}`);
      if (opts.check) {
        const r = await runSetupCheck({ tool: tool as ToolName | undefined, team: opts.team, project: opts.project, caFile: opts.caFile, configFile: opts.config });
        process.stdout.write(r.text);
        if (!r.ok) process.exitCode = 1;
        return;
      }
      if (tool === undefined) throw new TollgateError('TOLLGATE_ERR_USAGE', `name a tool (${TOOLS.join(', ')}) or pass --check`);
      if (tool === 'kubectl') { setupKubectlCommand(opts); return; }
      if (tool === 'claude-code') { setupClaudeCode(opts); return; }
      const client = resolveClient({ team: opts.team, project: opts.project, caFile: opts.caFile, configFile: opts.config });
      process.stdout.write(toolInstructions(tool, { proxyUrl: client.proxyUrl, caBundlePath: client.caBundlePath }));
    });
}
