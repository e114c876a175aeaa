// Owns: plain-words text for every matcher (host rules, HTTP rules, guardrails, bindings) and for
// whole decisions. The same sentences feed deny bodies, `tollgate policy explain` and audit rows,
// and tests pin them. PURE.
import { explainHostPattern } from './match/host-pattern.ts';
import type { CredentialBindingRef, Decision, HostPattern } from './types.ts';

export function describePorts(ports: ReadonlySet<number> | null): string {
  if (ports === null) return 'on every port';
  const list = [...ports].sort((a, b) => a - b);
  return list.length === 1 ? `on port ${list[0]}` : `on ports ${list.join(', ')}`;
}

export function describeMethods(methods: ReadonlySet<string> | null): string {
  if (methods === null) return 'any method';
  return [...methods].filter((m) => m !== 'HEAD' || !methods.has('GET')).join(', ');
}

export function describePaths(paths: readonly { glob: string }[] | null): string {
  if (paths === null) return 'any path';
  return paths.map((p) => p.glob).join(' or ');
}

export function explainHostRule(r: {
  action: 'allow' | 'deny' | 'direct';
  host: HostPattern;
  ports: ReadonlySet<number> | null;
  httpCount: number;
  origin: 'org' | 'team' | 'agent';
}): string {
  const host = explainHostPattern(r.host);
  const ports = describePorts(r.ports);
  if (r.origin === 'org') {
    return r.httpCount > 0
      ? `org guardrail: deny some requests to ${host} ${ports}`
      : `org guardrail: deny ${host} ${ports}`;
  }
  switch (r.action) {
    case 'deny':
      return `deny ${host} ${ports}`;
    case 'direct':
      return `allow ${host} ${ports} as a direct tunnel (not inspected, no credentials)`;
    case 'allow':
      return r.httpCount > 0
        ? `allow ${host} ${ports}, intercepted, subject to ${r.httpCount} HTTP rule${r.httpCount === 1 ? '' : 's'}`
        : `allow ${host} ${ports}, intercepted, any method and path`;
  }
}

export function explainHttpRule(r: { action: 'allow' | 'deny'; methods: ReadonlySet<string> | null; paths: readonly { glob: string }[] | null }): string {
  return `${r.action} ${describeMethods(r.methods)} on ${describePaths(r.paths)}`;
}

export function explainBinding(ref: CredentialBindingRef, host: HostPattern, methods: ReadonlySet<string> | null, paths: readonly { glob: string }[] | null): string {
  const what = (() => {
    switch (ref.kind) {
      case 'bearer':
        return `Authorization: Bearer <${ref.secret}>`;
      case 'basic':
        return `Authorization: Basic <${ref.username}:${ref.secret}>`;
      case 'header':
        return `${ref.headerName}: ${(ref.template ?? '{secret}').replace('{secret}', `<${ref.secret}>`)}`;
      case 'query':
        return `query parameter ${ref.queryName}=<${ref.secret}>`;
      case 'aws':
        return `AWS SigV4 signature with the keys in <${ref.secret}>`;
    }
  })();
  const scope: string[] = [];
  if (methods) scope.push(describeMethods(methods));
  if (paths) scope.push(`on ${describePaths(paths)}`);
  if (ref.project) scope.push(`when acting for project ${ref.project}`);
  return `inject ${what} for ${explainHostPattern(host)}${scope.length ? ` (${scope.join(', ')})` : ''}`;
}

/** Multi-line text for `tollgate policy explain`: the decision, the rule, the credentials. */
export function explainDecision(decision: Decision, request?: { method: string; url: string }): string {
  const lines: string[] = [];
  const verdict = decision.effect === 'allow' ? 'ALLOW' : decision.effect === 'direct' ? 'DIRECT' : 'DENY';
  lines.push(`${verdict}${request ? ` ${request.method} ${request.url}` : ''}`);
  lines.push(`  team:      ${decision.team}${decision.project ? ` (project ${decision.project}${decision.role ? `, ${decision.role}` : ''})` : ''}`);
  lines.push(`  rule:      ${decision.rule ?? '(no rule matched)'}`);
  lines.push(`  reason:    ${decision.reason}`);
  lines.push(`  why:       ${decision.explanation}`);
  // An allow is always intercepted: a pass-through tunnel is its own effect, direct.
  if (decision.effect === 'allow') lines.push('  intercept: yes (TLS terminated; HTTP rules, credentials and metering apply)');
  if (decision.matched.length > 1) lines.push(`  matched:   ${decision.matched.join(', ')}`);
  if (decision.credentials.length > 0) {
    lines.push('  credentials injected:');
    for (const c of decision.credentials) {
      lines.push(`    - ${c.name} (${c.id}): ${describeInjection(c)}`);
    }
  } else if (decision.effect !== 'deny') {
    lines.push('  credentials injected: none');
  }
  return `${lines.join('\n')}\n`;
}

function describeInjection(c: CredentialBindingRef): string {
  switch (c.kind) {
    case 'bearer':
      return `Authorization: Bearer from secret ${c.secret}`;
    case 'basic':
      return `Authorization: Basic as ${c.username} with secret ${c.secret}`;
    case 'header':
      return `${c.headerName} from secret ${c.secret}`;
    case 'query':
      return `query ${c.queryName} from secret ${c.secret}`;
    case 'aws':
      return `AWS SigV4 re-signing with secret ${c.secret}`;
  }
}
