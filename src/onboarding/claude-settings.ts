// Owns: merging Tollgate's settings into Claude Code's user settings (~/.claude/settings.json):
// the `env` block gets the proxy, the CA and a placeholder API key (the gateway injects the real
// one); every other key and every other variable is kept. PURE: the caller reads and writes.

export const PLACEHOLDER_KEY = 'tollgate-placeholder';

export interface ClaudeSettingsInput {
  proxyUrl: string;
  caBundlePath: string;
}

export interface MergedSettings {
  settings: Record<string, unknown>;
  /** Plain words, one per change ("set env.HTTPS_PROXY"). Empty when nothing changed. */
  changes: string[];
}

export class SettingsShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsShapeError';
  }
}

/** The variables Claude Code needs (the token is inside the proxy URL, so it is redacted in `changes`). */
export function claudeCodeEnv(input: ClaudeSettingsInput, hasApiKeyHelper: boolean): Array<[string, string]> {
  const vars: Array<[string, string]> = [
    ['HTTPS_PROXY', input.proxyUrl],
    ['HTTP_PROXY', input.proxyUrl],
    ['NODE_EXTRA_CA_CERTS', input.caBundlePath],
  ];
  if (!hasApiKeyHelper) vars.push(['ANTHROPIC_API_KEY', PLACEHOLDER_KEY]);
  return vars;
}

/**
 * Every URL's credentials in `text` hidden: `//user:secret@` → `//user:***@` (the user name is the
 * scope), and where there is no password — `tollgate env` without a team writes `//TOKEN:@` — the
 * user name is the secret: `//***:@`.
 */
export function redactProxyUrl(text: string): string {
  return text.replace(/\/\/([^:@/\s]*)(:[^@/\s]*)?@/g, (_m, user: string, pass: string | undefined) =>
    (pass === undefined || pass === ':' ? `//***${pass ?? ''}@` : `//${user}:***@`));
}

/** Merges into `existing` (parsed settings.json, or undefined when there is none). */
export function mergeClaudeSettings(existing: unknown, input: ClaudeSettingsInput): MergedSettings {
  if (existing !== undefined && (existing === null || typeof existing !== 'object' || Array.isArray(existing))) {
    throw new SettingsShapeError('settings.json is not a JSON object; fix or move it and run again');
  }
  const settings: Record<string, unknown> = { ...(existing as Record<string, unknown> | undefined) };
  const env = settings['env'];
  if (env !== undefined && (env === null || typeof env !== 'object' || Array.isArray(env))) {
    throw new SettingsShapeError('settings.json has an "env" that is not an object; fix it and run again');
  }
  const nextEnv: Record<string, unknown> = { ...(env as Record<string, unknown> | undefined) };
  const hasHelper = typeof settings['apiKeyHelper'] === 'string';
  const changes: string[] = [];
  for (const [k, v] of claudeCodeEnv(input, hasHelper)) {
    if (nextEnv[k] === v) continue;
    const shown = k.endsWith('_PROXY') ? redactProxyUrl(v) : v;
    changes.push(`${nextEnv[k] === undefined ? 'set' : 'replaced'} env.${k} = ${shown}`);
    nextEnv[k] = v;
  }
  settings['env'] = nextEnv;
  return { settings, changes };
}
