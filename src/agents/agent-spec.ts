// Owns: the managed agents of org.yaml as the supervisor runs them — command, schedule, scope.
// PURE.
import type { Agent, OrgConfig } from '../policy/types.ts';

export interface SupervisedAgent {
  /** org.yaml key, also the token subject and the log folder name. */
  key: string;
  name: string;
  team: string;
  project: string | undefined;
  /** Run every N ms (a scheduled, heartbeat-style agent); undefined = keep running, restart on exit. */
  everyMs: number | undefined;
  command: readonly string[];
  /** Extra environment for the agent (never the gateway's own secrets). */
  env: Readonly<Record<string, string>>;
}

export function supervisedAgent(a: Agent): SupervisedAgent | undefined {
  if (a.command === undefined || a.command.length === 0) return undefined;
  return {
    key: a.key, name: a.name, team: a.team, project: a.project,
    everyMs: a.everySeconds !== undefined && a.everySeconds > 0 ? a.everySeconds * 1000 : undefined,
    command: [...a.command],
    env: { TOLLGATE_AGENT: a.key, TOLLGATE_TEAM: a.team, ...(a.project ? { TOLLGATE_PROJECT: a.project } : {}) },
  };
}

/** Agents with a command; the others (token-only agents that run elsewhere) are listed as skipped. */
export function supervisedAgents(org: Pick<OrgConfig, 'agents'>): { agents: SupervisedAgent[]; skipped: string[] } {
  const agents: SupervisedAgent[] = [];
  const skipped: string[] = [];
  for (const a of org.agents.values()) {
    const s = supervisedAgent(a);
    if (s) agents.push(s);
    else skipped.push(a.key);
  }
  return { agents, skipped };
}
