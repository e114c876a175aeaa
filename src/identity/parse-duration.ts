// Owns: durations people type (`12h`, `30m`, `7d`, `1h30m`) → milliseconds. PURE.

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** undefined when the text is not a positive duration such as 90s, 30m, 12h, 7d, 2w or 1h30m. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (t === '' || t.length > 32 || !/^(\d+(ms|s|m|h|d|w))+$/.test(t)) return undefined;
  let total = 0;
  for (const m of t.matchAll(/(\d+)(ms|s|m|h|d|w)/g)) {
    const unit = UNITS[m[2] ?? ''];
    if (unit === undefined) return undefined;
    total += Number(m[1]) * unit;
  }
  return Number.isSafeInteger(total) && total > 0 ? total : undefined;
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
