// Preloaded into the gateway process by the bench only (node --expose-gc --import <this file>):
// on SIGUSR2 it collects garbage and writes process.memoryUsage() to $TOLLGATE_BENCH_PROBE_FILE,
// so that memory per connection is read after a full GC rather than wherever V8's heap happens to be.
// Nothing else in the gateway changes; without the variable it does nothing.
import { renameSync, writeFileSync } from 'node:fs';

const file = process.env.TOLLGATE_BENCH_PROBE_FILE;
if (file) {
  process.on('SIGUSR2', () => {
    globalThis.gc?.();
    globalThis.gc?.();
    const m = process.memoryUsage();
    writeFileSync(`${file}.tmp`, JSON.stringify({ gc: typeof globalThis.gc === 'function', ...m }));
    renameSync(`${file}.tmp`, file);
  });
}
