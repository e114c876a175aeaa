// Owns: one canonical JSON text per value — object keys sorted, undefined dropped, only finite
// numbers — so that the same record always serialises (and hashes) the same way. PURE.

export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonicalValue(value, 0));
}

function canonicalValue(v: unknown, depth: number): unknown {
  if (depth > 32) throw new TypeError('canonicalJson: value nested too deeply');
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError('canonicalJson: numbers must be finite');
    return v;
  }
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : canonicalValue(x, depth + 1)));
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined && typeof x !== 'function') out[k] = canonicalValue(x, depth + 1);
    }
    return out;
  }
  throw new TypeError(`canonicalJson: cannot serialise a ${typeof v}`);
}
