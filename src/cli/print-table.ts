// Owns: printing rows as an aligned text table for people (scripts use --json).
export function printTable(rows: ReadonlyArray<Record<string, string | number>>, write: (s: string) => void = (s) => process.stdout.write(s)): void {
  if (rows.length === 0) {
    write('(none)\n');
    return;
  }
  const cols = Object.keys(rows[0] as object);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(width[i] ?? 0)).join('  ').trimEnd() + '\n';
  write(line(cols.map((c) => c.toUpperCase())));
  for (const r of rows) write(line(cols.map((c) => String(r[c] ?? ''))));
}
