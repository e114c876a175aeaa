// Preloaded into the gateway process by the bench only (node --expose-gc --import <this file>).
// Nothing in the gateway changes; without $TOLLGATE_BENCH_PROBE_FILE it does nothing.
//  - SIGUSR2: collects garbage and writes process.memoryUsage() to $TOLLGATE_BENCH_PROBE_FILE, so
//    that memory per connection is read after a full GC rather than wherever V8's heap happens to be.
//  - SIGWINCH: writes the event loop's delay since the last SIGWINCH (perf_hooks'
//    monitorEventLoopDelay at 1 ms resolution: how late a timer that should fire every millisecond
//    ran, so a task that holds the loop for X ms shows as X ms plus up to about 2 ms — compare with
//    the baseline window, which carries the same offset) to
//    $TOLLGATE_BENCH_PROBE_FILE.loop, then starts a new window. No GC, so the window is not disturbed.
import { renameSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const file = process.env.TOLLGATE_BENCH_PROBE_FILE;
if (file) {
  process.on('SIGUSR2', () => {
    globalThis.gc?.();
    globalThis.gc?.();
    const m = process.memoryUsage();
    writeFileSync(`${file}.tmp`, JSON.stringify({ gc: typeof globalThis.gc === 'function', ...m }));
    renameSync(`${file}.tmp`, file);
  });
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  process.on('SIGWINCH', () => {
    const ms = (ns) => Math.round(ns / 1e4) / 100;
    const r = { count: loop.count, maxMs: ms(loop.max), p99Ms: ms(loop.percentile(99)), meanMs: ms(loop.mean) };
    loop.reset();
    writeFileSync(`${file}.loop.tmp`, JSON.stringify(r));
    renameSync(`${file}.loop.tmp`, `${file}.loop`);
  });
}
