// Owns: removing known secret values from any text before it is logged, audited or shown:
// each value, its URL-encoded and base64 forms, replaced by [REDACTED]. PURE.

export const REDACTED = '[REDACTED]';
const MIN_LENGTH = 4;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The forms a secret value may take on the wire. */
export function secretForms(value: string): string[] {
  const forms = new Set<string>([value]);
  forms.add(encodeURIComponent(value));
  forms.add(Buffer.from(value, 'utf8').toString('base64'));
  return [...forms].filter((f) => f.length >= MIN_LENGTH);
}

/** A function that replaces every known secret (and its encoded forms) with [REDACTED]. */
export function createRedactor(values: Iterable<string>): (text: string) => string {
  const all = new Set<string>();
  for (const v of values) if (v.length >= MIN_LENGTH) for (const f of secretForms(v)) all.add(f);
  if (all.size === 0) return (text) => text;
  const pattern = new RegExp([...all].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|'), 'g');
  return (text) => text.replace(pattern, REDACTED);
}

/** One-shot form of createRedactor. */
export function redactSecrets(text: string, values: Iterable<string>): string {
  return createRedactor(values)(text);
}
