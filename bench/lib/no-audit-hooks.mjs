// BENCH ONLY — module resolution hook registered by bench/lib/no-audit-register.mjs (see there).
const STAGE = '/src/stages/audit-decision.ts';
const STUB = new URL('./no-audit-stage.ts', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  const r = await nextResolve(specifier, context);
  if (r.url.endsWith(STAGE) && context.parentURL !== STUB) return { ...r, url: STUB };
  return r;
}
