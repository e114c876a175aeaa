// Owns: the supervisor's status file (<data_dir>/agents/status.json): what each agent is doing,
// when it last started, beat and exited, how often it was restarted and why it was stopped.
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../store/write-file-atomic.ts';

export type AgentState = 'starting' | 'running' | 'waiting' | 'backoff' | 'stopped';

export interface AgentStatus {
  key: string;
  name: string;
  team: string;
  project: string | null;
  state: AgentState;
  pid: number | null;
  /** "every 5m" or "continuous". */
  schedule: string;
  lastStartAt: string | null;
  /** Last sign of life: a run that ended well (scheduled agents) or a check while it runs. */
  lastHeartbeatAt: string | null;
  lastExit: { code: number | null; signal: string | null; at: string; durationMs: number } | null;
  restarts: number;
  consecutiveFailures: number;
  nextRunAt: string | null;
  /** Why the agent is stopped (budget exhausted …), with a stable code. */
  stopped: { code: 'budget_exhausted' | 'launch_failed' | 'supervisor_stopped'; reason: string; at: string } | null;
  logFile: string;
}

export interface StatusFile {
  updatedAt: string;
  supervisorPid: number;
  /** false once the supervisor stopped cleanly. */
  supervisorRunning: boolean;
  agents: AgentStatus[];
}

export function agentsDir(dataDir: string): string {
  return path.join(dataDir, 'agents');
}

export function statusFilePath(dataDir: string): string {
  return path.join(agentsDir(dataDir), 'status.json');
}

export function writeStatusFile(file: string, status: StatusFile): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, `${JSON.stringify(status, null, 2)}\n`, 0o644);
}

export function readStatusFile(file: string): StatusFile | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as StatusFile;
  } catch {
    return undefined;
  }
}
