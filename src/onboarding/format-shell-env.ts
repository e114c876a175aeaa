// Owns: printing environment variables for one shell (bash, zsh, fish, PowerShell) so that
// `eval "$(tollgate env)"` (or its equivalent) sets them. PURE.

export const SHELLS = ['bash', 'zsh', 'fish', 'powershell'] as const;
export type ShellName = (typeof SHELLS)[number];

export function isShellName(s: string): s is ShellName {
  return (SHELLS as readonly string[]).includes(s);
}

/** The shell named by $SHELL (bash when unknown). */
export function detectShell(shellEnv: string | undefined): ShellName {
  const base = (shellEnv ?? '').split('/').pop() ?? '';
  if (base === 'zsh' || base === 'fish') return base;
  if (base === 'pwsh' || base === 'powershell') return 'powershell';
  return 'bash';
}

const posix = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
const fish = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const pwsh = (v: string) => `'${v.replace(/'/g, "''")}'`;

/** One line per variable, in the given order, then a comment saying how to use it. */
export function formatShellEnv(shell: ShellName, vars: ReadonlyArray<readonly [string, string]>, unset: readonly string[] = []): string {
  const lines: string[] = [];
  for (const [k, v] of vars) {
    if (shell === 'fish') lines.push(`set -gx ${k} ${fish(v)};`);
    else if (shell === 'powershell') lines.push(`$env:${k} = ${pwsh(v)}`);
    else lines.push(`export ${k}=${posix(v)}`);
  }
  for (const k of unset) {
    if (shell === 'fish') lines.push(`set -e ${k};`);
    else if (shell === 'powershell') lines.push(`Remove-Item Env:${k} -ErrorAction SilentlyContinue`);
    else lines.push(`unset ${k}`);
  }
  const how = shell === 'fish' ? 'tollgate env --shell fish | source'
    : shell === 'powershell' ? 'tollgate env --shell powershell | Invoke-Expression'
      : `eval "$(tollgate env --shell ${shell})"`;
  lines.push(`# Run this to configure your shell: ${how}`);
  return `${lines.join('\n')}\n`;
}
