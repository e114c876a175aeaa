// BENCH ONLY — preloaded into a gateway process by the audit scenario (bench/audit-scenario.ts) with
// `node --import <this file> bin/tollgate serve …`, never by Tollgate itself: swaps the audit stage
// module (src/stages/audit-decision.ts) for bench/lib/no-audit-stage.ts, so that the same build and
// the same config run once without audit writes, for the "with vs without audit" comparison.
// There is no configuration switch that turns audit off: a production gateway always audits.
import { register } from 'node:module';

register('./module-swap-hooks.mjs', {
  parentURL: import.meta.url,
  data: { swaps: [{ target: '/src/stages/audit-decision.ts', stub: new URL('./no-audit-stage.ts', import.meta.url).href }] },
});
