// Owns: running the managed agents — each on its schedule, restarted with backoff after a crash,
// its output in a rotating log, stopped for good (with the reason recorded) when its budget scope
// or its team's is exhausted — the status file that `tollgate agent list` reads, and the
// `agent_started` / `agent_stopped` audit events of each run.
// Launching (the sandbox), tokens, budgets and the audit trail come in as interfaces, so tests use twins.
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { BestEffortAudit } from '../audit/audit-commands.ts';
import type { Logger } from '../observability/logger.ts';
import type { SupervisedAgent } from './agent-spec.ts';
import { agentsDir, statusFilePath, writeStatusFile, type AgentStatus } from './agent-status.ts';
import { DEFAULT_BACKOFF, restartDelay, type BackoffPolicy } from './restart-delay.ts';
import { openRotatingLog, type RotatingLog } from './rotating-log.ts';

/** Budget status of an agent's scopes (its own and its team's), from metering. */
export interface BudgetProbe {
  exhausted(scope: { team: string; agent: string }): Promise<{ exhausted: boolean; reason?: string }>;
}

/** The agent's gateway token, issued or rotated as needed. */
export interface AgentTokenSource {
  tokenFor(agent: SupervisedAgent): Promise<string>;
}

export interface AgentProcess {
  readonly pid: number;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): boolean;
}

/** Starts one run of an agent (in the sandbox, with its token); stdout/stderr piped. */
export type AgentLauncher = (agent: SupervisedAgent, token: string) => Promise<AgentProcess>;

export interface SupervisorOptions {
  agents: readonly SupervisedAgent[];
  launch: AgentLauncher;
  tokens: AgentTokenSource;
  budget: BudgetProbe;
  /** Logs go to <dataDir>/agents/<key>/output.log, status to <dataDir>/agents/status.json. */
  dataDir: string;
  backoff?: Partial<BackoffPolicy>;
  /** How often a running agent's budget is checked and its heartbeat written. Default 30 s. */
  checkEveryMs?: number;
  /** SIGTERM → SIGKILL grace when stopping an agent. Default 5 s. */
  killGraceMs?: number;
  log?: { maxBytes?: number; keep?: number };
  logger?: Logger;
  now?: () => number;
  /**
   * Records `agent_started` and `agent_stopped` (`tollgate agents`: straight into tollgate.db).
   * Called unguarded: a BestEffortAudit never throws (bestEffortAuditor hands a failed write to
   * its error callback), so the agents run on regardless — agents are not requests, the gateway
   * audits (and fails closed on) every request an agent makes.
   */
  audit?: BestEffortAudit;
  /** Actor of those events: who runs the supervisor (`cli:<os user>`). Default `supervisor`. */
  actor?: string;
}

export interface Supervisor {
  start(): void;
  /** Stops every agent (SIGTERM, then SIGKILL after the grace) and writes the final status. */
  stop(): Promise<void>;
  status(): AgentStatus[];
  readonly statusFile: string;
}

interface Slot {
  agent: SupervisedAgent;
  status: AgentStatus;
  proc: AgentProcess | undefined;
  timer: NodeJS.Timeout | undefined;
  check: NodeJS.Timeout | undefined;
  log: RotatingLog;
  /** Set when the supervisor (budget, shutdown) ended the run: no restart. */
  halt: AgentStatus['stopped'];
  done: Promise<void> | undefined;
}

function schedule(a: SupervisedAgent): string {
  if (a.everyMs === undefined) return 'continuous';
  const s = a.everyMs / 1000;
  return s % 3600 === 0 ? `every ${s / 3600}h` : s % 60 === 0 ? `every ${s / 60}m` : `every ${s}s`;
}

export function createSupervisor(opts: SupervisorOptions): Supervisor {
  const now = opts.now ?? Date.now;
  const iso = (ms: number) => new Date(ms).toISOString();
  const backoff: BackoffPolicy = { ...DEFAULT_BACKOFF, ...opts.backoff };
  const checkEveryMs = opts.checkEveryMs ?? 30_000;
  const killGraceMs = opts.killGraceMs ?? 5000;
  const statusFile = statusFilePath(opts.dataDir);
  const logger = opts.logger;
  const actor = opts.actor ?? 'supervisor';
  let stopping = false;

  const audit = opts.audit ?? (() => undefined);
  const scope = (a: SupervisedAgent) => ({ agent: a.key, team: a.team, project: a.project ?? null });

  const slots: Slot[] = opts.agents.map((agent) => {
    const log = openRotatingLog(path.join(agentsDir(opts.dataDir), agent.key), opts.log ?? {});
    return {
      agent, log, proc: undefined, timer: undefined, check: undefined, halt: null, done: undefined,
      status: {
        key: agent.key, name: agent.name, team: agent.team, project: agent.project ?? null, state: 'waiting', pid: null,
        schedule: schedule(agent), lastStartAt: null, lastHeartbeatAt: null, lastExit: null, restarts: 0,
        consecutiveFailures: 0, nextRunAt: null, stopped: null, logFile: log.file,
      },
    };
  });

  const save = (running = true) => {
    try {
      writeStatusFile(statusFile, { updatedAt: iso(now()), supervisorPid: process.pid, supervisorRunning: running, agents: slots.map((s) => s.status) });
    } catch (err) {
      logger?.error('agent status file not written', { file: statusFile, error: (err as Error).message });
    }
  };

  const stopFor = (slot: Slot, stopped: NonNullable<AgentStatus['stopped']>) => {
    slot.halt = stopped;
    slot.status.stopped = stopped;
    slot.status.nextRunAt = null;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    logger?.warn('agent stopped', { agent: slot.agent.key, team: slot.agent.team, code: stopped.code, reason: stopped.reason });
    slot.log.write(`=== ${stopped.at} tollgate stopped the agent: ${stopped.reason}\n`);
    if (slot.proc) terminate(slot.proc); // its agent_stopped is written when the run ends
    else {
      slot.status.state = 'stopped';
      audit({
        type: 'agent_stopped', actor,
        detail: { ...scope(slot.agent), pid: null, code: null, signal: null, duration_ms: null, reason: stopped.code, message: stopped.reason },
      });
    }
    save();
  };

  const terminate = (p: AgentProcess) => {
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), killGraceMs);
    t.unref();
    void p.exited.finally(() => clearTimeout(t));
  };

  const budgetExhausted = async (slot: Slot): Promise<boolean> => {
    let r: { exhausted: boolean; reason?: string };
    try {
      r = await opts.budget.exhausted({ team: slot.agent.team, agent: slot.agent.key });
    } catch (err) {
      // Unknown budget state: keep the agent's current state; the gateway still refuses over-budget requests.
      logger?.warn('agent budget check failed', { agent: slot.agent.key, error: (err as Error).message });
      return false;
    }
    if (!r.exhausted) return false;
    if (slot.halt === null) {
      stopFor(slot, { code: 'budget_exhausted', reason: r.reason ?? `the budget of agent ${slot.agent.key} or of team ${slot.agent.team} is exhausted`, at: iso(now()) });
    }
    return true;
  };

  const scheduleRun = (slot: Slot, delayMs: number) => {
    if (stopping || slot.halt !== null) return;
    slot.status.nextRunAt = iso(now() + delayMs);
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      slot.done = runOnce(slot);
    }, Math.max(0, delayMs));
  };

  const runOnce = async (slot: Slot): Promise<void> => {
    if (stopping || slot.halt !== null) return;
    const { agent, status } = slot;
    status.nextRunAt = null;
    if (await budgetExhausted(slot)) return;
    status.state = 'starting';
    const startedAt = now();
    let proc: AgentProcess;
    try {
      const token = await opts.tokens.tokenFor(agent);
      if (stopping || slot.halt !== null) return;
      proc = await opts.launch(agent, token);
    } catch (err) {
      const message = (err as Error).message;
      slot.log.write(`=== ${iso(now())} launch failed: ${message}\n`);
      logger?.error('agent launch failed', { agent: agent.key, error: message });
      status.consecutiveFailures++;
      status.restarts++;
      status.state = 'backoff';
      status.lastExit = { code: null, signal: null, at: iso(now()), durationMs: 0 };
      save();
      scheduleRun(slot, restartDelay(status.consecutiveFailures, backoff));
      return;
    }
    slot.proc = proc;
    status.state = 'running';
    status.pid = proc.pid;
    status.lastStartAt = iso(startedAt);
    slot.log.write(`=== ${iso(startedAt)} start pid ${proc.pid}: ${agent.command.join(' ')}\n`);
    logger?.info('agent started', { agent: agent.key, team: agent.team, pid: proc.pid });
    audit({ type: 'agent_started', actor, detail: { ...scope(agent), pid: proc.pid, schedule: status.schedule, restarts: status.restarts } });
    proc.stdout?.on('data', (d: Buffer) => slot.log.write(d));
    proc.stderr?.on('data', (d: Buffer) => slot.log.write(d));
    save();
    slot.check = setInterval(() => {
      void budgetExhausted(slot).then((gone) => {
        if (!gone && slot.proc === proc) {
          status.lastHeartbeatAt = iso(now());
          save();
        }
      });
    }, checkEveryMs);
    const exit = await proc.exited;
    clearInterval(slot.check);
    slot.check = undefined;
    slot.proc = undefined;
    const endedAt = now();
    const durationMs = endedAt - startedAt;
    status.pid = null;
    status.lastExit = { code: exit.code, signal: exit.signal, at: iso(endedAt), durationMs };
    slot.log.write(`=== ${iso(endedAt)} exit ${exit.signal ?? `code ${exit.code}`} after ${durationMs} ms\n`);
    const ok = exit.code === 0;
    logger?.info('agent exited', { agent: agent.key, code: exit.code, signal: exit.signal, duration_ms: durationMs });
    // slot.halt is set meanwhile (budget, shutdown) when the supervisor ended the run.
    const halt = slot.halt as AgentStatus['stopped'];
    audit({
      type: 'agent_stopped', actor,
      detail: {
        ...scope(agent), pid: proc.pid, code: exit.code, signal: exit.signal, duration_ms: durationMs,
        reason: halt?.code ?? (ok ? 'exited' : 'failed'), message: halt?.reason ?? null,
      },
    });
    if (slot.halt !== null) {
      status.state = 'stopped';
      save();
      return;
    }
    if (ok) {
      status.consecutiveFailures = 0;
      status.lastHeartbeatAt = iso(endedAt);
    } else {
      status.consecutiveFailures = durationMs >= backoff.stableMs ? 1 : status.consecutiveFailures + 1;
    }
    if (agent.everyMs !== undefined) {
      // Scheduled: the next run at its time; a crash is retried sooner, with backoff.
      const nextScheduled = Math.max(0, startedAt + agent.everyMs - endedAt);
      const delay = ok ? nextScheduled : Math.min(nextScheduled || Infinity, restartDelay(status.consecutiveFailures, backoff));
      if (!ok) status.restarts++;
      status.state = ok ? 'waiting' : 'backoff';
      save();
      scheduleRun(slot, delay);
    } else {
      // Continuous: always restarted; backoff grows while it keeps failing fast.
      if (ok) status.consecutiveFailures = durationMs >= backoff.stableMs ? 0 : status.consecutiveFailures + 1;
      status.restarts++;
      status.state = 'backoff';
      save();
      scheduleRun(slot, restartDelay(Math.max(1, status.consecutiveFailures), backoff));
    }
  };

  return {
    statusFile,
    start() {
      for (const slot of slots) scheduleRun(slot, 0);
      save();
    },
    async stop() {
      stopping = true;
      for (const slot of slots) {
        if (slot.timer) clearTimeout(slot.timer);
        slot.timer = undefined;
        slot.status.nextRunAt = null;
        if (slot.proc) {
          slot.halt = { code: 'supervisor_stopped', reason: 'the supervisor was stopped', at: iso(now()) };
          terminate(slot.proc);
        }
      }
      await Promise.all(slots.map((s) => s.done?.catch(() => undefined)));
      for (const slot of slots) {
        slot.status.state = slot.status.stopped ? 'stopped' : 'waiting';
        slot.log.close();
      }
      save(false);
    },
    status: () => slots.map((s) => ({ ...s.status })),
  };
}
