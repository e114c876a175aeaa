// Owns: reading the proxy user name (`<team>` or `<team>.<project>`) into a principal scope,
// checked against the organisation. PURE.
import type { CompiledPolicySet } from './types.ts';

export type ScopeResult =
  | { ok: true; team: string; project: string | undefined }
  | { ok: false; message: string };

/** `sre` → team sre; `backend-engineering.staging` → team and project. Team and project must exist and be granted. */
export function parseScope(set: CompiledPolicySet, username: string): ScopeResult {
  const dot = username.indexOf('.');
  const team = dot < 0 ? username : username.slice(0, dot);
  const project = dot < 0 ? undefined : username.slice(dot + 1);
  const t = set.org.teams.get(team);
  if (!t) return { ok: false, message: `"${team}" is not a team; use one of ${[...set.org.teams.keys()].join(', ')} as the proxy user name` };
  if (project === undefined) return { ok: true, team, project };
  if (!t.grants.has(project)) {
    const granted = [...t.grants.keys()];
    return { ok: false, message: `team ${team} has no grant on project "${project}"${granted.length ? `; use ${granted.map((p) => `${team}.${p}`).join(' or ')}` : ''}` };
  }
  return { ok: true, team, project };
}
