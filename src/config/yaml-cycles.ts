// Owns: finding a cycle in parsed YAML (an alias that refers to a node containing it, such as
// `a: &x [*x]`), which the YAML library turns into a circular value. PURE.
import type { PathSegment } from './yaml-source.ts';

/** The path of the first alias that closes a cycle, or null. */
export function findCycle(value: unknown): PathSegment[] | null {
  const onStack = new Set<unknown>();
  const path: PathSegment[] = [];
  const visit = (v: unknown): boolean => {
    if (v === null || typeof v !== 'object') return false;
    if (onStack.has(v)) return true;
    onStack.add(v);
    const entries: [PathSegment, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v as object);
    for (const [k, child] of entries) {
      path.push(k);
      if (visit(child)) return true;
      path.pop();
    }
    onStack.delete(v);
    return false;
  };
  return visit(value) ? path : null;
}
