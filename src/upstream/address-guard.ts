// Owns: choosing which resolved address may be dialled. Non-public addresses are refused unless a
// policy rule names them or `upstreams:` (operator config) put them there; the gateway's own
// listening sockets are never a destination. The decision is made on the address actually dialled.
import os from 'node:os';
import { classifyAddress, isPublic } from '../classify/classify-address.ts';
import { formatIp, parseIp, type ParsedIp } from '../classify/ip-address.ts';
import { RequestRefusal } from '../errors.ts';
import type { Resolution } from './resolver.ts';

export interface AddressGuardOptions {
  /** Ports the gateway itself listens on (proxy, admin, …). */
  ownPorts: () => ReadonlySet<number>;
  /** Does a policy rule for this exchange name this (non-public) address? */
  ruleAllows: (ip: ParsedIp) => boolean;
}

export interface VettedTarget { address: string; port: number; source: Resolution['source'] }

function localAddresses(): Set<string> {
  const set = new Set<string>(['0.0.0.0', '::']);
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) {
      const p = parseIp(a.address.split('%')[0] ?? '');
      if (p) set.add(formatIp(p));
    }
  }
  return set;
}

let cachedLocal: { at: number; set: Set<string> } | undefined;
function isOwnHostAddress(ip: ParsedIp, cls: string): boolean {
  if (cls === 'loopback' || cls === 'unspecified') return true;
  const now = Date.now();
  if (!cachedLocal || now - cachedLocal.at > 30_000) cachedLocal = { at: now, set: localAddresses() };
  return cachedLocal.set.has(formatIp(ip));
}

export function vetResolution(host: string, resolution: Resolution, port: number, opts: AddressGuardOptions): VettedTarget {
  const dialPort = resolution.port ?? port;
  const refused: Array<{ address: string; cls: string }> = [];
  for (const text of resolution.addresses) {
    const ip = parseIp(text);
    if (!ip) continue;
    const { class: cls } = classifyAddress(ip);
    if (opts.ownPorts().has(dialPort) && isOwnHostAddress(ip, cls)) {
      throw new RequestRefusal('self_connection', `Tollgate does not connect to its own listener (${host}:${port}).`);
    }
    if (resolution.source === 'override' || isPublic(cls) || opts.ruleAllows(ip)) {
      return { address: formatIp(ip), port: dialPort, source: resolution.source };
    }
    refused.push({ address: formatIp(ip), cls: cls.replace(/_/g, '-') });
  }
  // The client learns the classes, not the addresses: what an internal name resolves to is not the
  // agent's to learn through the gateway. The addresses go to the log line and the audit row.
  const classes = [...new Set(refused.map((r) => r.cls))];
  throw new RequestRefusal(
    'ip_not_allowed',
    `${host} resolves only to non-public addresses (${classes.join(', ') || 'none usable'}); a policy rule must name the address or range to allow it.`,
    { detail: `${host} resolved to ${refused.map((r) => `${r.address} (${r.cls})`).join(', ') || 'no usable address'}; no policy rule names them` },
  );
}
