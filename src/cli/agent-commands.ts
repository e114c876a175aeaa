// Owns: `tollgate agents` (supervise the managed agents of org.yaml), `tollgate agent list` and
// `tollgate agent create NAME --team T [--every 5m] -- COMMAND…` — argument parsing and printing
// around src/agents/.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { appendAgent, AppendAgentError } from '../agents/append-agent.ts';
import { bestEffortAuditor, cliActor } from '../audit/audit-commands.ts';
import { supervisedAgents } from '../agents/agent-spec.ts';
import { readStatusFile, statusFilePath, agentsDir } from '../agents/agent-status.ts';
import { createAgentTokenSource } from '../agents/agent-tokens.ts';
import { createSandboxLauncher } from '../agents/sandbox-launcher.ts';
import { createLedgerBudgetProbe } from '../agents/ledger-budget-probe.ts';
import { createSupervisor } from '../agents/supervisor.ts';
import { createSqliteLedger } from '../store/sqlite-ledger.ts';
import { databasePath, loadGatewayConfig } from '../config/gateway-config.ts';
import { loadOrgAndPolicies } from '../config/policy-source.ts';
import { TollgateError } from '../errors.ts';
import { createTokenService } from '../identity/token-service.ts';
import { createLogger } from '../observability/logger.ts';
import { NO_SANDBOX_WARNING } from '../sandbox/plan-sandbox.ts';
import { checkSandboxSupport } from '../sandbox/sandbox-support.ts';
import { writeCaBundle } from '../sandbox/write-ca-bundle.ts';
import { openDatabase } from '../store/database.ts';
import { createSqliteTokenStore } from '../store/sqlite-token-store.ts';
import { addConfigOption, configPath } from './config-option.ts';
import { printTable } from './print-table.ts';
import { HOLDER_SCRIPT } from './run-command.ts';


function loadOrg(config: ReturnType<typeof loadGatewayConfig>) {
  const r = loadOrgAndPolicies({ orgFile: config.org, policiesDir: config.policies });
  if (!r.ok) throw new TollgateError('TOLLGATE_ERR_CONFIG_INVALID', `invalid organisation or policy files (${config.org})`, { problems: r.problems });
  return r.bundle.org;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function registerAgentCommands(program: Command): void {
  addConfigOption(program.command('agents').description('supervise the managed agents of org.yaml (sandboxed, scheduled, restarted, budget-stopped)'))
    .option('--no-sandbox', 'ADVISORY ONLY: run agents without network isolation')
    .option('--only <keys>', 'supervise only these agents (comma-separated keys)')
    .action(async (opts: { config?: string; sandbox: boolean; only?: string }) => {
      const config = loadGatewayConfig(configPath(opts));
      const org = loadOrg(config);
      const logger = createLogger({ level: config.log.level, base: { component: 'agents' } });
      const only = opts.only?.split(',').map((s) => s.trim()).filter(Boolean);
      const { agents: all, skipped } = supervisedAgents(org);
      const agents = only ? all.filter((a) => only.includes(a.key)) : all;
      if (only) for (const k of only) if (!all.some((a) => a.key === k)) throw new TollgateError('TOLLGATE_ERR_USAGE', `no agent "${k}" with a command in ${config.org}`);
      if (skipped.length > 0) logger.info('agents without a command are not supervised', { agents: skipped });
      if (agents.length === 0) throw new TollgateError('TOLLGATE_ERR_USAGE', `no agent in ${config.org} has a command to run`);
      let tools;
      if (opts.sandbox) {
        const s = checkSandboxSupport();
        if (!s.ok) throw new TollgateError('TOLLGATE_ERR_SANDBOX', `the sandbox is unavailable: ${s.reason}.\n  What to do: ${s.hint}`);
        tools = s.tools;
      } else process.stderr.write(`${NO_SANDBOX_WARNING}\n`);
      if (!existsSync(config.ca.cert)) throw new TollgateError('TOLLGATE_ERR_CA', `no CA certificate at ${config.ca.cert}: start the gateway once (or run \`tollgate ca init\`)`);
      const caBundlePath = writeCaBundle(path.join(agentsDir(config.dataDir), 'ca-bundle.pem'), readFileSync(config.ca.cert, 'utf8'));
      const db = openDatabase(databasePath(config), { busyTimeoutMs: config.audit.busyTimeoutMs });
      // agent_started / agent_stopped and the agent tokens' events go straight into tollgate.db's
      // event chain (alongside a running gateway); a failed write is logged, the agents run on
      // (bestEffortAuditor is the only guard: the supervisor and the token source have none).
      const audit = bestEffortAuditor(db, (err, event) => logger.error('audit event not written', { type: event.type, error: err.message }));
      const actor = cliActor();
      const host = config.listen.proxy.host === '0.0.0.0' || config.listen.proxy.host === '::' ? '127.0.0.1' : config.listen.proxy.host;
      const supervisor = createSupervisor({
        agents,
        dataDir: config.dataDir,
        tokens: createAgentTokenSource(createTokenService(createSqliteTokenStore(db), { cacheTtlMs: 0 }), { audit, actor }),
        budget: createLedgerBudgetProbe(createSqliteLedger(db), () => org),
        launch: createSandboxLauncher({ gateway: { host, port: config.listen.proxy.port }, caBundlePath, tools, holderScript: HOLDER_SCRIPT, cwd: path.dirname(config.org) }),
        logger,
        audit,
        actor,
      });
      supervisor.start();
      logger.info('supervising agents', { agents: agents.map((a) => a.key), status_file: supervisor.statusFile });
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void supervisor.stop().finally(() => resolve());
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      db.close();
    });

  const agent = program.command('agent').description('list and create managed agents');
  addConfigOption(agent.command('list').description('the managed agents of org.yaml and what the supervisor last reported'))
    .option('--json', 'print JSON')
    .action((opts: { config?: string; json?: boolean }) => {
      const config = loadGatewayConfig(configPath(opts));
      const org = loadOrg(config);
      const status = readStatusFile(statusFilePath(config.dataDir));
      const supervised = status !== undefined && status.supervisorRunning !== false && alive(status.supervisorPid);
      const rows = [...org.agents.values()].map((a) => {
        const s = status?.agents.find((x) => x.key === a.key);
        return {
          agent: a.key, team: a.team, schedule: a.every ? `every ${a.every}` : a.command ? 'continuous' : '-',
          state: !a.command ? 'external' : s === undefined ? 'never run' : supervised ? s.state : s.state === 'stopped' ? 'stopped' : 'not supervised',
          pid: supervised ? s?.pid ?? null : null,
          last_start: s?.lastStartAt ?? null, last_heartbeat: s?.lastHeartbeatAt ?? null,
          last_exit: s?.lastExit ? (s.lastExit.signal ?? `code ${s.lastExit.code}`) : null,
          restarts: s?.restarts ?? 0, stopped_reason: s?.stopped?.reason ?? null,
        };
      });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ supervised, statusFile: statusFilePath(config.dataDir), agents: rows }, null, 2)}\n`);
        return;
      }
      printTable(rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? '-' : String(v)]))));
    });
  addConfigOption(agent.command('create').description('add a managed agent to org.yaml (comments and layout kept; validated first)'))
    .usage('NAME --team T [--every 5m] [--project P] -- COMMAND [ARGS…]')
    .argument('<name>', 'display name, e.g. "SRE Monitor" (key: sre-monitor)')
    .argument('<command...>', 'the agent command, after --')
    .requiredOption('--team <team>', 'the team whose policy the agent runs under')
    .option('--project <project>', 'the project it acts for')
    .option('--every <interval>', 'run every 30s, 5m, 1h, 1d (default: keep running)')
    .option('--key <key>', 'org.yaml key (default: from the name)')
    .option('--monthly-usd <n>', 'monthly budget in US dollars', Number)
    .option('--daily-usd <n>', 'daily budget in US dollars', Number)
    .action((name: string, command: string[], opts: { config?: string; team: string; project?: string; every?: string; key?: string; monthlyUsd?: number; dailyUsd?: number }) => {
      const config = loadGatewayConfig(configPath(opts));
      const original = readFileSync(config.org, 'utf8');
      const budget = opts.monthlyUsd !== undefined || opts.dailyUsd !== undefined
        ? { ...(opts.monthlyUsd !== undefined ? { monthly_usd: opts.monthlyUsd } : {}), ...(opts.dailyUsd !== undefined ? { daily_usd: opts.dailyUsd } : {}) }
        : undefined;
      let next: { text: string; key: string };
      try {
        next = appendAgent(original, { name, team: opts.team, project: opts.project, every: opts.every, command, key: opts.key, budget });
      } catch (err) {
        if (err instanceof AppendAgentError) throw new TollgateError('TOLLGATE_ERR_USAGE', err.message);
        throw err;
      }
      // Validate the whole organisation with the new text before it replaces org.yaml.
      const candidate = path.join(path.dirname(config.org), `.${path.basename(config.org)}.${process.pid}.new`);
      writeFileSync(candidate, next.text);
      try {
        const r = loadOrgAndPolicies({ orgFile: candidate, policiesDir: config.policies });
        if (!r.ok) {
          const shown = path.basename(config.org);
          throw new TollgateError('TOLLGATE_ERR_CONFIG_INVALID', `agent ${next.key} not added: org.yaml would be invalid`, {
            problems: r.problems.map((p) => ({ ...p, file: p.file === path.basename(candidate) ? shown : p.file })),
          });
        }
        if (readFileSync(config.org, 'utf8') !== original) throw new TollgateError('TOLLGATE_ERR_USAGE', `${config.org} changed while the agent was being added; run again`);
        renameSync(candidate, config.org);
      } finally {
        rmSync(candidate, { force: true });
      }
      process.stdout.write(`added agent ${next.key} (${name}, team ${opts.team}${opts.every ? `, every ${opts.every}` : ''}) to ${config.org}\n` +
        `its token is issued when \`tollgate agents\` starts it; \`tollgate agent list\` shows it\n`);
    });
}
