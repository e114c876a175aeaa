// Owns: the compact form of the spend-ledger calls that cross from the proxy thread to the audit
// writer thread and back — a reservation (its budget lines), a settlement and a settlement's line
// changes travel as flat arrays of primitives. Structured cloning the objects cost the proxy's loop
// several times more (measured here: ~18 µs against ~4 µs per reservation, serialised and read
// back). The writer's ledger needs of a budget line only its scope, window and limit; a refusal
// names the line by its place in the request, and the proxy side answers with its own object. PURE.
import type { LineChange, ReservationRequest, ReserveOutcome, SettleOutcome, SettleRequest } from './ledger.ts';
import type { LineState } from '../metering/budget.ts';

/** What the writer's ledger reads of a budget line. */
export interface AdmissionLine {
  scope: string;
  windowKey: string;
  /** undefined: spend is tracked, nothing is enforced */
  limitMicros: number | undefined;
}

/** A reservation without its budget lines (they travel as AdmissionLines). */
export type ReservationHead = Omit<ReservationRequest, 'lines'>;

/** The writer ledger's answer to a reservation: a refusal names its line by index. */
export type LineAdmission = { ok: true } | { ok: false; index: number; state: LineState };

const HEAD = 10;
const LINE = 3;

/** A message the writer cannot read is that call's failure, never the store's (its batch goes on). */
export const MALFORMED_CALL = 'LEDGER_CALL_MALFORMED';

function fail(what: string): never {
  throw Object.assign(new TypeError(`malformed ledger message: ${what}`), { code: MALFORMED_CALL });
}

function str(v: unknown, what: string): string {
  return typeof v === 'string' ? v : fail(`${what} is not a string`);
}

function optStr(v: unknown, what: string): string | undefined {
  return v === null ? undefined : str(v, what);
}

function num(v: unknown, what: string): number {
  return typeof v === 'number' ? v : fail(`${what} is not a number`);
}

function optNum(v: unknown, what: string): number | undefined {
  return v === null ? undefined : num(v, what);
}

function arr(v: unknown, what: string): readonly unknown[] {
  return Array.isArray(v) ? v : fail(`${what} is not an array`);
}

export function packReservation(r: ReservationRequest): unknown[] {
  const p = r.principal;
  const out: unknown[] = [r.id, r.at, r.amountMicros, r.provider, r.model, p.kind, p.subject, p.team, p.agent ?? null, p.project ?? null];
  for (const l of r.lines) out.push(l.scope, l.window.key, l.limitMicros ?? null);
  return out;
}

export function unpackReservation(v: unknown): { head: ReservationHead; lines: AdmissionLine[] } {
  const a = arr(v, 'reservation');
  if (a.length < HEAD || (a.length - HEAD) % LINE !== 0) fail(`a reservation of ${a.length} values`);
  const kind = a[5];
  if (kind !== 'user' && kind !== 'agent' && kind !== 'anonymous') fail('principal kind');
  const agent = optStr(a[8], 'agent');
  const project = optStr(a[9], 'project');
  const head: ReservationHead = {
    id: str(a[0], 'id'), at: num(a[1], 'at'), amountMicros: num(a[2], 'amountMicros'), provider: str(a[3], 'provider'), model: str(a[4], 'model'),
    principal: { kind, subject: str(a[6], 'subject'), team: str(a[7], 'team'), ...(agent === undefined ? {} : { agent }), ...(project === undefined ? {} : { project }) },
  };
  const lines: AdmissionLine[] = [];
  for (let i = HEAD; i < a.length; i += LINE) {
    lines.push({ scope: str(a[i], 'scope'), windowKey: str(a[i + 1], 'window key'), limitMicros: optNum(a[i + 2], 'limit') });
  }
  return { head, lines };
}

export function packLineAdmission(o: LineAdmission): unknown {
  return o.ok ? true : [o.index, o.state.spentMicros, o.state.reservedMicros];
}

/** The writer's answer as the Ledger contract's outcome: a refused line is `r`'s own object. */
export function unpackReserveOutcome(v: unknown, r: ReservationRequest): ReserveOutcome {
  if (v === true) return { ok: true };
  const a = arr(v, 'reservation outcome');
  const line = r.lines[num(a[0], 'line index')];
  if (line === undefined) fail(`line ${String(a[0])} of a reservation of ${r.lines.length} lines`);
  return { ok: false, line, state: { spentMicros: num(a[1], 'spent'), reservedMicros: num(a[2], 'reserved') }, amountMicros: r.amountMicros };
}

/** The ledger stores the four token counts and the 1-hour cache writes travel too; `webSearches` does not (nothing stores it). */
export function packSettlement(s: SettleRequest): unknown[] {
  const t = s.tokens;
  return [s.id, s.at, s.costMicros, s.estimated, t.inputTokens, t.outputTokens, t.cacheReadTokens, t.cacheWriteTokens, t.cacheWrite1hTokens, s.model ?? null];
}

export function unpackSettlement(v: unknown): SettleRequest {
  const a = arr(v, 'settlement');
  if (a.length !== 10) fail(`a settlement of ${a.length} values`);
  if (typeof a[3] !== 'boolean') fail('estimated is not a boolean');
  const model = optStr(a[9], 'model');
  return {
    id: str(a[0], 'id'), at: num(a[1], 'at'), costMicros: num(a[2], 'costMicros'), estimated: a[3],
    tokens: { inputTokens: num(a[4], 'input'), outputTokens: num(a[5], 'output'), cacheReadTokens: num(a[6], 'cache read'), cacheWriteTokens: num(a[7], 'cache write'), cacheWrite1hTokens: num(a[8], 'cache write 1h') },
    ...(model === undefined ? {} : { model }),
  };
}

export function packSettleOutcome(o: SettleOutcome): unknown[] {
  const out: unknown[] = [o.settled];
  for (const c of o.lines) out.push(c.scope, c.windowKey, c.spentBeforeMicros, c.spentAfterMicros);
  return out;
}

export function unpackSettleOutcome(v: unknown): SettleOutcome {
  const a = arr(v, 'settlement outcome');
  if (typeof a[0] !== 'boolean' || (a.length - 1) % 4 !== 0) fail('settlement outcome');
  const lines: LineChange[] = [];
  for (let i = 1; i < a.length; i += 4) {
    lines.push({ scope: str(a[i], 'scope'), windowKey: str(a[i + 1], 'window key'), spentBeforeMicros: num(a[i + 2], 'spent before'), spentAfterMicros: num(a[i + 3], 'spent after') });
  }
  return { settled: a[0], lines };
}
