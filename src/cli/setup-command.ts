// Owns: `tollgate setup <tool> [--print]` — write (Claude Code) or print (the others) a desktop
// tool's settings for the gateway.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { TollgateError } from '../errors.ts';
import { mergeClaudeSettings, SettingsShapeError } from '../onboarding/claude-settings.ts';
import { resolveClient } from '../onboarding/resolve-client.ts';
import { isToolName, toolInstructions, TOOLS } from '../onboarding/tool-instructions.ts';
import { addConfigOption } from './config-option.ts';

export function claudeSettingsFile(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env['CLAUDE_CONFIG_DIR'] ?? path.join(env['HOME'] ?? os.homedir(), '.claude');
  return path.join(dir, 'settings.json');
}

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

export function registerSetupCommand(program: Command): void {
  addConfigOption(program.command('setup').description(`configure a desktop tool for the gateway (${TOOLS.join(', ')})`))
    .argument('<tool>', TOOLS.join(' | '))
    .option('--print', 'only print the settings; change no file')
    .option('--team <team>', 'act for this team (default: your only team)')
    .option('--project <project>', 'act for this project of the team')
    .option('--ca-file <file>', "the gateway's CA certificate")
    .action((tool: string, opts: { config?: string; print?: boolean; team?: string; project?: string; caFile?: string }) => {
      if (!isToolName(tool)) throw new TollgateError('TOLLGATE_ERR_USAGE', `unknown tool "${tool}"; one of ${TOOLS.join(', ')}`);
      const client = resolveClient({ team: opts.team, project: opts.project, caFile: opts.caFile, configFile: opts.config });
      const ctx = { proxyUrl: client.proxyUrl, caBundlePath: client.caBundlePath };
      if (tool !== 'claude-code') {
        process.stdout.write(toolInstructions(tool, ctx));
        return;
      }
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
      if (existsSync(file)) copyFileSync(file, `${file}.tollgate-backup`);
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(merged.settings, null, 2)}\n`, { mode: 0o600 });
      renameSync(tmp, file);
      process.stdout.write(`updated ${file}${existsSync(`${file}.tollgate-backup`) ? ` (previous version: ${file}.tollgate-backup)` : ''}:\n${merged.changes.map((c) => `  ${c}\n`).join('')}` +
        'Restart Claude Code to pick it up.\n');
    });
}
