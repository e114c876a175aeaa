// Owns: reading a rule's `host:` text into a HostPattern, refusing over-broad or ambiguous globs
// with a message that gives the fix, and matching/explaining/covering patterns. PURE.
import type { HostPattern } from '../types.ts';
import { cidrCoversCidr, formatCidr, ipInCidr, parseAddressRule, type ParsedIp } from './address.ts';

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/** Multi-tenant suffixes: anyone can host content under them. */
export const MULTI_TENANT_SUFFIXES: readonly string[] = [
  'amazonaws.com', 'cloudfront.net', 'github.io', 'githubusercontent.com', 'azureedge.net', 'azurewebsites.net',
  'appspot.com', 'blob.core.windows.net', 'web.core.windows.net', 'herokuapp.com', 'netlify.app', 'vercel.app',
  'pages.dev', 'workers.dev', 'firebaseapp.com', 'web.app', 'storage.googleapis.com', 'googleusercontent.com',
  'fastly.net', 'akamaized.net', 'ngrok.io', 'ngrok-free.app', 'r2.dev', 'onrender.com', 'fly.dev',
];

function asciiHint(text: string): string {
  try {
    const ascii = new URL(`http://${text.replace(/^\*\./, 'x.')}/`).hostname;
    return text.startsWith('*.') ? ascii.replace(/^x\./, '*.') : ascii;
  } catch {
    return '';
  }
}

function validateDnsName(name: string, whole: string): string | null {
  if (name.length === 0) return `"${whole}" names no host`;
  if (name.length > 253) return `"${whole}" is longer than 253 characters`;
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(name)) {
    const hint = asciiHint(whole);
    return `"${whole}" is not ASCII; write internationalised names in punycode${hint ? ` (${hint})` : ''}`;
  }
  if (name !== name.toLowerCase()) return `"${whole}" must be lower case (${whole.toLowerCase()}); hosts are compared in lower case`;
  const labels = name.split('.');
  for (const l of labels) {
    if (!LABEL.test(l)) return `"${whole}" is not a valid host name (label "${l}")`;
  }
  const last = name.slice(name.lastIndexOf('.') + 1);
  if (/^(0x[0-9a-f]*|\d+)$/.test(last)) {
    return `"${whole}" looks like an IP address in a non-canonical notation; write it as dotted-quad (for example 127.0.0.1) or a CIDR`;
  }
  return null;
}

export type HostPatternResult = { ok: true; pattern: HostPattern } | { ok: false; message: string };

/** Parses a rule host: exact name, `*.suffix`, `*`, IP or CIDR. Trailing dots are dropped. */
export function parseHostPattern(raw: string): HostPatternResult {
  const text = raw.trim();
  if (text === '*') return { ok: true, pattern: { kind: 'any', text } };
  if (text.includes('://') || text.includes('/') && !/^[0-9a-fA-F.:[\]]+\/\d+$/.test(text)) {
    return { ok: false, message: `"${raw}" must be a host name, not a URL or path (write only the host, e.g. api.github.com)` };
  }
  if (/:\d+$/.test(text) && !text.includes('::') && text.split(':').length === 2) {
    return { ok: false, message: `"${raw}" includes a port; list ports under ports: instead` };
  }
  const address = parseAddressRule(text);
  if (address) {
    if (!address.ok) return address;
    return address.single
      ? { ok: true, pattern: { kind: 'ip', text, cidr: address.cidr } }
      : { ok: true, pattern: { kind: 'cidr', text, cidr: address.cidr } };
  }
  const name = text.endsWith('.') ? text.slice(0, -1) : text;
  if (name.startsWith('*.')) {
    const suffix = name.slice(2);
    if (suffix.includes('*')) return { ok: false, message: `"${raw}": only one leading "*." is allowed (write *.example.com)` };
    const problem = validateDnsName(suffix, raw);
    if (problem) return { ok: false, message: problem };
    if (!suffix.includes('.')) {
      return { ok: false, message: `"${raw}" matches every host under a top-level domain; name the domain (for example *.example.${suffix})` };
    }
    return { ok: true, pattern: { kind: 'suffix', text: `*.${suffix}`, suffix } };
  }
  if (name.includes('*')) {
    const lastWild = name.lastIndexOf('*.');
    const hint = lastWild >= 0 && name.slice(lastWild + 2) && !name.slice(lastWild + 2).includes('*')
      ? `write *.${name.slice(lastWild + 2)} (any subdomain) or list the hosts`
      : name.startsWith('*') && !name.slice(1).includes('*') && name.length > 1
        ? `write *.${name.slice(1).replace(/^\./, '')} for its subdomains, and ${name.slice(1).replace(/^\./, '')} itself if you mean it`
        : 'list each host, for example github.com';
    return {
      ok: false,
      message: `"${raw}": "*" is allowed only as a whole leading label ("*.example.com" matches any subdomain) or alone ("*" matches every host); ${hint}`,
    };
  }
  const problem = validateDnsName(name, raw);
  if (problem) return { ok: false, message: problem };
  return { ok: true, pattern: { kind: 'exact', text: name, host: name } };
}

/** Whether a (normalised) request host matches. `ip` is the parsed host when it is an address. */
export function hostPatternMatches(p: HostPattern, host: string, ip: ParsedIp | null): boolean {
  switch (p.kind) {
    case 'any':
      return true;
    case 'exact':
      return ip === null && host === p.host;
    case 'suffix':
      return ip === null && host.length > p.suffix.length + 1 && host.endsWith(p.suffix) && host.charCodeAt(host.length - p.suffix.length - 1) === 46;
    case 'ip':
    case 'cidr':
      return ip !== null && ipInCidr(p.cidr, ip);
  }
}

/** Whether every host `inner` matches is also matched by `outer`. */
export function hostPatternCovers(outer: HostPattern, inner: HostPattern): boolean {
  if (outer.kind === 'any') return true;
  if (inner.kind === 'any') return false;
  if (outer.kind === 'exact') return inner.kind === 'exact' && inner.host === outer.host;
  if (outer.kind === 'suffix') {
    if (inner.kind === 'exact') return inner.host.endsWith(`.${outer.suffix}`);
    if (inner.kind === 'suffix') return inner.suffix === outer.suffix || inner.suffix.endsWith(`.${outer.suffix}`);
    return false;
  }
  return (inner.kind === 'ip' || inner.kind === 'cidr') && cidrCoversCidr(outer.cidr, inner.cidr);
}

/** Whether some host could match both patterns. */
export function hostPatternsOverlap(a: HostPattern, b: HostPattern): boolean {
  return hostPatternCovers(a, b) || hostPatternCovers(b, a);
}

/** Plain words for a host pattern. */
export function explainHostPattern(p: HostPattern): string {
  switch (p.kind) {
    case 'any':
      return 'every host';
    case 'exact':
      return p.host;
    case 'suffix':
      return `any host ending in .${p.suffix}`;
    case 'ip':
      return `the address ${p.text}`;
    case 'cidr':
      return `addresses in ${formatCidr(p.cidr)}`;
  }
}

/** The multi-tenant suffix a pattern reaches into, if any. */
export function multiTenantSuffixOf(p: HostPattern): string | undefined {
  if (p.kind === 'any') return '*';
  if (p.kind !== 'suffix') return undefined;
  return MULTI_TENANT_SUFFIXES.find((s) => p.suffix === s || p.suffix.endsWith(`.${s}`));
}
