// Owns: a verified token record + the requested scope → the principal a request runs as. PURE.
import type { TokenRecord } from '../store/token-store.ts';
import { parseScope } from './scope.ts';

export interface Principal {
  kind: 'user' | 'agent';
  /** The token id (never the token). */
  id: string;
  /** The user's e-mail or the agent's name. */
  subject: string;
  team: string;
  project?: string;
  /** The agent's name, for agent tokens. */
  agent?: string;
}

export type ResolvedPrincipal =
  | { ok: true; principal: Principal }
  | { ok: false; reason: 'auth_invalid'; message: string };

type ScopedRecord = Pick<TokenRecord, 'kind' | 'id' | 'subject' | 'teams' | 'projects'>;

function list(names: readonly string[]): string {
  return names.join(', ');
}

/**
 * The scope must name one of the token's teams (and, if the token is narrowed to projects, one of
 * those). Without a scope the token's only team is used; a token with several teams needs one.
 * Whether the project exists and is granted to the team is for the policy stage (it knows org.yaml).
 */
export function resolvePrincipal(record: ScopedRecord, scope: string | undefined): ResolvedPrincipal {
  const base = (team: string, project: string | undefined): ResolvedPrincipal => {
    const principal: Principal = { kind: record.kind, id: record.id, subject: record.subject, team };
    if (project !== undefined) principal.project = project;
    if (record.kind === 'agent') principal.agent = record.subject;
    return { ok: true, principal };
  };
  const narrowed = record.projects !== undefined && record.projects.length > 0 ? record.projects : undefined;
  const defaultProject = narrowed?.length === 1 ? narrowed[0] : undefined;

  if (scope === undefined || scope === '') {
    const only = record.teams.length === 1 ? record.teams[0] : undefined;
    if (only === undefined) {
      return {
        ok: false,
        reason: 'auth_invalid',
        message: `This token is valid for several teams; use <team>:<token> as proxy credentials: one of ${list(record.teams)}.`,
      };
    }
    return base(only, defaultProject);
  }
  const parsed = parseScope(scope);
  if (parsed === undefined) {
    return { ok: false, reason: 'auth_invalid', message: 'The scope must be <team> or <team>.<project> (lower case letters, digits and hyphens).' };
  }
  if (!record.teams.includes(parsed.team)) {
    return {
      ok: false,
      reason: 'auth_invalid',
      message: `This token is not valid for team ${parsed.team}; it is valid for: ${list(record.teams)}. Use one of them as the proxy user name, or run \`tollgate login\` again if your teams changed.`,
    };
  }
  if (parsed.project !== undefined && narrowed !== undefined && !narrowed.includes(parsed.project)) {
    return {
      ok: false,
      reason: 'auth_invalid',
      message: `This token is not valid for project ${parsed.project}; it is valid for: ${list(narrowed)}.`,
    };
  }
  return base(parsed.team, parsed.project ?? defaultProject);
}
