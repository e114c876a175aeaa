// Owns: checking plain data from a YamlSource against a TypeBox (JSON Schema) schema and turning
// every failure into a file:line:col problem whose message says what was expected.
import { TypeCompiler, ValueErrorType, type Static, type TSchema, type TypeCheck } from './typebox.ts';
import type { Problem } from '../errors.ts';
import type { PathSegment, YamlSource } from './yaml-source.ts';

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();

function checkerFor<T extends TSchema>(schema: T): TypeCheck<T> {
  let c = compiled.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    compiled.set(schema, c);
  }
  return c as TypeCheck<T>;
}

export function pointerToPath(pointer: string): PathSegment[] {
  if (pointer === '') return [];
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

export function displayPath(path: readonly PathSegment[]): string {
  return path.length === 0 ? '(top level)' : path.map((s) => (typeof s === 'number' ? `[${s}]` : s)).join('.').replace(/\.\[/g, '[');
}

/** Validates `source.value` against `schema`; returns problems (empty when valid). */
export function validateAgainstSchema<T extends TSchema>(
  source: YamlSource,
  schema: T,
  value: unknown = source.value,
): { ok: true; value: Static<T> } | { ok: false; problems: Problem[] } {
  const checker = checkerFor(schema);
  if (checker.Check(value)) return { ok: true, value: value as Static<T> };
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const err of checker.Errors(value)) {
    const path = pointerToPath(err.path);
    let message: string;
    let keyPos = false;
    if (err.type === ValueErrorType.ObjectAdditionalProperties) {
      // TypeBox reports the unknown key's own path.
      const key = path[path.length - 1];
      message = `unknown key "${String(key)}" in ${displayPath(path.slice(0, -1))}`;
      keyPos = true;
    } else if (err.type === ValueErrorType.ObjectRequiredProperty) {
      message = `${displayPath(path)} is required`;
    } else if (err.type === ValueErrorType.Union) {
      message = `${displayPath(path)}: ${err.schema.description ?? 'value does not have an accepted shape'}`;
    } else {
      const want = err.schema.description ? ` (${err.schema.description})` : '';
      message = `${displayPath(path)}: ${err.message.charAt(0).toLowerCase()}${err.message.slice(1)}${want}`;
    }
    const pos = err.type === ValueErrorType.ObjectRequiredProperty
      ? source.positionOf(path.slice(0, -1))
      : source.positionOf(path, { key: keyPos });
    const dedupe = `${pos.line}:${pos.col}:${message}`;
    if (seen.has(dedupe)) continue;
    seen.add(dedupe);
    problems.push({ ...pos, severity: 'error', message });
    if (problems.length >= 20) break;
  }
  return { ok: false, problems };
}
