// Owns: finding a duplicated member name in a JSON text (RFC 8259 leaves their meaning open, and
// JSON.parse keeps the last): an ID token whose header or claims name a member twice is refused,
// so no reader can see a different value than the one that was checked. PURE.

/**
 * The first member name that appears twice in one object of `json` (names compared after
 * unescaping), or undefined. Malformed JSON yields undefined: the JSON parser reports it.
 */
export function duplicateMemberName(json: string): string | undefined {
  const stack: Array<{ keys: Set<string> | undefined; expectKey: boolean }> = [];
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let j = i + 1;
      while (j < json.length && json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      if (j >= json.length) return undefined;
      const top = stack[stack.length - 1];
      if (top?.keys !== undefined && top.expectKey) {
        let name: string;
        try {
          name = JSON.parse(json.slice(i, j + 1)) as string;
        } catch {
          return undefined;
        }
        if (top.keys.has(name)) return name;
        top.keys.add(name);
        top.expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      stack.push({ keys: new Set(), expectKey: true });
    } else if (c === '[') {
      stack.push({ keys: undefined, expectKey: false });
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top?.keys !== undefined) top.expectKey = true;
    }
  }
  return undefined;
}
