// Owns: parsing a JSON request body of the admin API. Refuses keys that could reach an object's
// prototype when a later step merges the value (`__proto__`, `constructor`, `prototype`), and
// numbers JSON.parse turns into something that is not a finite number (`1e999` → Infinity), so
// no handler ever sees them (security cases 9.04, 6.14). PURE.

export type ParsedAdminJson =
  | { ok: true; value: unknown }
  | { ok: false; code: 'json_invalid' | 'json_forbidden_key' | 'json_number_invalid'; message: string };

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

class Refusal extends Error {
  constructor(readonly code: 'json_forbidden_key' | 'json_number_invalid', message: string) {
    super(message);
  }
}

export function parseAdminJson(text: string): ParsedAdminJson {
  try {
    const value: unknown = JSON.parse(text, (key, v: unknown) => {
      if (FORBIDDEN_KEYS.has(key)) throw new Refusal('json_forbidden_key', `The key ${JSON.stringify(key)} is not allowed in a request body.`);
      if (typeof v === 'number' && !Number.isFinite(v)) throw new Refusal('json_number_invalid', `The value of ${JSON.stringify(key)} is not a finite number.`);
      return v;
    });
    return { ok: true, value };
  } catch (err) {
    if (err instanceof Refusal) return { ok: false, code: err.code, message: err.message };
    return { ok: false, code: 'json_invalid', message: 'The request body is not valid JSON.' };
  }
}

/** A whole number ≥ 0 that is a safe integer; refuses strings ("100"), NaN, Infinity, -1, -0, 1.5 and 1e308. */
export function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && !Object.is(v, -0);
}
