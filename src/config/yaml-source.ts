// Owns: reading one YAML text into plain data while keeping where every value came from,
// so that every later problem can be reported as file:line:col.
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { Problem, SourcePosition } from '../errors.ts';
import { findCycle } from './yaml-cycles.ts';

export type PathSegment = string | number;

export interface YamlSource {
  file: string;
  /** Plain data (maps → objects with a null prototype are converted to plain objects). */
  value: unknown;
  /** Position of the node at `path` (the key for map entries when `key` is true). */
  positionOf(path: readonly PathSegment[], opts?: { key?: boolean }): SourcePosition;
}

export type YamlParseResult = { ok: true; source: YamlSource } | { ok: false; problems: Problem[] };

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Parses YAML text strictly: no custom tags, no duplicate keys, bounded aliases, no prototype keys. */
export function parseYamlSource(file: string, text: string): YamlParseResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    uniqueKeys: true,
    prettyErrors: false,
    strict: true,
    customTags: [],
    schema: 'core',
    version: '1.2',
  });
  const at = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, col };
  };
  const problems: Problem[] = [];
  for (const e of doc.errors) {
    problems.push({ ...at(e.pos[0]), severity: 'error', message: e.message.split('\n')[0] ?? e.message });
  }
  if (problems.length === 0) {
    const tagProblem = findTagOrPrototypeKey(doc, at);
    if (tagProblem) problems.push(tagProblem);
  }
  if (problems.length > 0) return { ok: false, problems };
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 50 });
  } catch (err) {
    return { ok: false, problems: [{ ...at(0), severity: 'error', message: `cannot read YAML: ${(err as Error).message}` }] };
  }
  const cycleAt = findCycle(value);
  const positionOf = (path: readonly PathSegment[], opts: { key?: boolean } = {}): SourcePosition => {
    let node: unknown = doc.contents;
    let best: number | undefined = rangeStart(node);
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        const last = seg === path[path.length - 1] && opts.key;
        node = last ? pair.key : pair.value;
        best = rangeStart(node) ?? rangeStart(pair.key) ?? best;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
        best = rangeStart(node) ?? best;
      } else break;
    }
    return at(best ?? 0);
  };
  if (cycleAt) {
    return { ok: false, problems: [{ ...positionOf(cycleAt), severity: 'error', message: 'this alias refers to a node that contains it (a cycle); write the value out instead' }] };
  }
  return { ok: true, source: { file, value: value ?? null, positionOf } };
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as Node | undefined)?.range;
  return range ? range[0] : undefined;
}

function findTagOrPrototypeKey(doc: Document, at: (o: number) => SourcePosition): Problem | undefined {
  let found: Problem | undefined;
  const visit = (node: unknown): void => {
    if (found || node === null || node === undefined) return;
    if (isScalar(node) || isMap(node) || isSeq(node)) {
      const tag = (node as { tag?: string }).tag;
      if (tag && !tag.startsWith('tag:yaml.org,2002:')) {
        found = { ...at(rangeStart(node) ?? 0), severity: 'error', message: `custom YAML tag ${tag} is not allowed` };
        return;
      }
    }
    if (isMap(node)) {
      for (const pair of node.items) {
        if (isScalar(pair.key) && FORBIDDEN_KEYS.has(String(pair.key.value))) {
          found = { ...at(rangeStart(pair.key) ?? 0), severity: 'error', message: `key "${String(pair.key.value)}" is not allowed` };
          return;
        }
        visit(pair.key);
        visit(pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) visit(item);
    }
  };
  visit(doc.contents);
  return found;
}
