// Owns: the oldest Node.js release of each line the gateway will run on — the line's latest
// security release that fixed something a TLS-intercepting HTTP proxy is exposed to (security case
// 7.11). PURE. Floors, per release line:
// - 20.20.2, 22.22.2, 24.14.1, 25.8.2 (2026-03-24): CVE-2026-21637, a TLS SNICallback exception that
//   bypassed every TLS error handler and stopped the process — the gateway mints certificates
//   from SNICallback for every intercepted connection — plus HTTP header/trailer and HashDoS fixes.
// Lines below 20 and the odd (never-LTS, unsupported) lines 21 and 23 are refused; lines after 25
// are newer than this table and accepted.

export const PATCHED_FLOORS: Readonly<Record<number, string>> = { 20: '20.20.2', 22: '22.22.2', 24: '24.14.1', 25: '25.8.2' };
const NEWEST_KNOWN_LINE = 25;

function parse(v: string): [number, number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** Why `version` (process.versions.node) is below the patched floor, or undefined when it is not. */
export function belowPatchedFloor(version: string): string | undefined {
  const v = parse(version);
  if (!v) return `cannot read the Node.js version "${version}"`;
  const [major] = v;
  if (major > NEWEST_KNOWN_LINE) return undefined;
  const floor = PATCHED_FLOORS[major];
  if (floor === undefined) {
    return `Node.js ${version} is on an unsupported release line; use ${Object.values(PATCHED_FLOORS).join(', ')} or later on its line`;
  }
  const f = parse(floor) as [number, number, number];
  for (let i = 1; i < 3; i++) {
    if ((v[i] as number) > (f[i] as number)) return undefined;
    if ((v[i] as number) < (f[i] as number)) return `Node.js ${version} lacks security fixes the gateway depends on (CVE-2026-21637: a TLS SNICallback exception stops the process); upgrade to ${floor} or later`;
  }
  return undefined;
}
