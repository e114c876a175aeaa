// BENCH ONLY — a module resolution hook that swaps source modules for bench stand-ins, registered
// by bench/lib/no-audit-register.mjs and bench/lib/no-sql-audit-register.cjs (see there) with
// `data: { swaps: [{ target, stub }] }`: an import that resolves to a URL ending in `target` gets
// `stub` instead, except the stub's own import of the real module.
let swaps = [];

export async function initialize(data) {
  swaps = data.swaps;
}

export async function resolve(specifier, context, nextResolve) {
  const r = await nextResolve(specifier, context);
  for (const { target, stub } of swaps) {
    if (r.url.endsWith(target) && context.parentURL !== stub) return { ...r, url: stub };
  }
  return r;
}
