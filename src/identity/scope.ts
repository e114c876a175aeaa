// Owns: the proxy-credential scope `<team>` or `<team>.<project>`: its syntax and its parts. PURE.

/** One team or project name: lower case, digits and hyphens, starting with a letter or digit. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const SCOPE_PATTERN = /^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)?$/;
const MAX_SCOPE_LENGTH = 127;

export interface Scope {
  team: string;
  project?: string;
}

/** undefined when the text is not a valid scope. */
export function parseScope(text: string): Scope | undefined {
  if (text.length > MAX_SCOPE_LENGTH || !SCOPE_PATTERN.test(text)) return undefined;
  const dot = text.indexOf('.');
  if (dot < 0) return NAME_PATTERN.test(text) ? { team: text } : undefined;
  const team = text.slice(0, dot);
  const project = text.slice(dot + 1);
  return NAME_PATTERN.test(team) && NAME_PATTERN.test(project) ? { team, project } : undefined;
}
