// Helpers for config-defaults.test.ts: every `default` a config schema declares (the Default column
// of docs/reference/*-yaml.md) must be what the loader applies when the key is absent. For each
// declared default, a minimal document is loaded twice — without the key, and with the key set to
// its default — and the loaded values must be the same; set to another value, they must differ
// (so the key is really read, and the comparison can see it).
import type { TSchema } from '@sinclair/typebox';

/** A key path in a document: a key, every item of a list (`[]`) or every value of a map (`<>`). */
export type Segment = string | '[]' | '<>';

interface Node {
  default?: unknown;
  const?: unknown;
  anyOf?: Node[];
  properties?: Record<string, Node>;
  patternProperties?: Record<string, Node>;
  items?: Node;
  maximum?: number;
}

export interface DeclaredDefault {
  readonly path: readonly Segment[];
  readonly value: unknown;
  readonly node: Node;
}

/** Every key of `schema` that declares a default, depth first. */
export function declaredDefaults(schema: TSchema): DeclaredDefault[] {
  const out: DeclaredDefault[] = [];
  const walk = (n: Node, path: Segment[]): void => {
    if (path.length > 0 && n.default !== undefined) out.push({ path, value: n.default, node: n });
    for (const [k, v] of Object.entries(n.properties ?? {})) walk(v, [...path, k]);
    if (n.items) walk(n.items, [...path, '[]']);
    for (const v of Object.values(n.patternProperties ?? {})) walk(v, [...path, '<>']);
  };
  walk(JSON.parse(JSON.stringify(schema)) as Node, []);
  return out;
}

export function showPath(path: readonly Segment[]): string {
  return path.map((s, i) => (s === '[]' ? '[]' : s === '<>' ? '.<key>' : i === 0 ? s : `.${s}`)).join('');
}

/**
 * A copy of `doc` with the key at `path` set to `value` everywhere the path reaches: missing
 * objects along plain keys are created, lists and maps are entered item by item (they must exist in
 * `doc`). Returns how many places were set.
 */
export function setAt(doc: unknown, path: readonly Segment[], value: unknown): { doc: unknown; places: number } {
  const copy = structuredClone(doc) as Record<string, unknown>;
  let places = 0;
  const visit = (target: Record<string, unknown>, rest: readonly Segment[]): void => {
    const [head, ...tail] = rest;
    if (head === undefined) return;
    if (tail.length === 0) {
      target[head] = structuredClone(value);
      places++;
      return;
    }
    const next = tail[0];
    if (next === '[]' || next === '<>') {
      const container = target[head];
      const items = next === '[]' ? (Array.isArray(container) ? container : []) : container && typeof container === 'object' ? Object.values(container) : [];
      for (const item of items) if (item && typeof item === 'object') visit(item as Record<string, unknown>, tail.slice(1));
      return;
    }
    if (!target[head] || typeof target[head] !== 'object') target[head] = {};
    visit(target[head] as Record<string, unknown>, tail);
  };
  visit(copy, path);
  return { doc: copy, places };
}

function otherScalar(value: unknown, node: Node): unknown[] {
  if (node.anyOf?.every((v) => v.const !== undefined)) return node.anyOf.map((v) => v.const).filter((c) => c !== value);
  if (node.const !== undefined) return [];
  if (typeof value === 'boolean') return [!value];
  if (typeof value === 'number') return node.maximum !== undefined && value + 1 > node.maximum ? [value - 1] : [value + 1];
  if (typeof value === 'string') return [...(/\d/.test(value) ? [value.replace(/\d+/, (d) => String(Number(d) + 1))] : []), `${value}x`, `${value}X`];
  return [];
}

/** Values other than the default to try, to show the loader reads the key (may be empty). */
export function otherValues(value: unknown, node: Node): unknown[] {
  if (Array.isArray(value)) return value.length > 1 ? [value.slice(0, -1)] : [];
  if (value && typeof value === 'object') {
    const [first] = Object.entries(value);
    if (!first) return [];
    return otherScalar(first[1], node.properties?.[first[0]] ?? {}).map((v) => ({ ...value, [first[0]]: v }));
  }
  return otherScalar(value, node);
}

/** A compiled path glob: its behaviour lives in the `test` closure. */
interface PathMatcherLike {
  glob: string;
  test: (path: string) => boolean;
}

function isPathMatcher(v: unknown): v is PathMatcherLike {
  return !!v && typeof v === 'object' && typeof (v as PathMatcherLike).glob === 'string' && typeof (v as PathMatcherLike).test === 'function';
}

/**
 * A stable text of a loaded value: maps and sets as lists, regular expressions as text, path
 * matchers by what they answer for their glob in its own, lower and upper case; other functions
 * are left out.
 */
export function snapshot(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Map) return { map: [...v.entries()] };
    if (v instanceof Set) return { set: [...v.values()] };
    if (v instanceof RegExp) return { regexp: String(v) };
    if (isPathMatcher(v)) {
      const probe = v.glob.replace(/\*+/g, 'x');
      return { glob: v.glob, matches: [probe, probe.toLowerCase(), probe.toUpperCase()].map((p) => v.test(p)) };
    }
    return v;
  });
}
