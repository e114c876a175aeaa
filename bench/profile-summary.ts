// Owns: reading the gateway's V8 CPU profiles (.cpuprofile, written by --cpu-prof on exit) and
// listing where its time went: top functions by self time, and self time grouped by source
// (Tollgate's src/, undici, node internals, tsx/esbuild start-up, GC).
// Run alone: node --import tsx bench/profile-summary.ts <dir-or-file> [top]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; hitCount?: number; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface ProfileEntry { name: string; where: string; selfMs: number; share: number }
export interface ProfileSummary { files: string[]; totalMs: number; busyMs: number; top: ProfileEntry[]; groups: Array<{ group: string; selfMs: number; share: number }> }

function groupOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)' || fn === '(idle)' || fn === '(root)') return fn;
  if (url.includes('/src/')) return `tollgate ${url.slice(url.indexOf('/src/') + 1).split('/').slice(0, 2).join('/')}`;
  if (url.includes('node_modules/undici/')) return 'undici';
  if (url.includes('node_modules/tsx/') || url.includes('node_modules/esbuild/')) return 'tsx/esbuild (start-up)';
  if (url.includes('node_modules/')) return `package ${url.split('node_modules/')[1]?.split('/')[0] ?? '?'}`;
  if (url.startsWith('node:')) return `node ${url.slice(5).split('/').slice(0, 2).join('/')}`;
  if (url === '') return 'native / V8 builtins';
  return url;
}

function short(url: string): string {
  if (url.includes('node_modules/')) return url.slice(url.lastIndexOf('node_modules/') + 13);
  if (url.includes('/src/')) return url.slice(url.indexOf('/src/') + 1);
  return url.replace(/^file:\/\//, '');
}

export function summariseProfiles(target: string, top = 25): ProfileSummary {
  const files = statSync(target, { throwIfNoEntry: false })?.isDirectory()
    ? readdirSync(target).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(target, f))
    : statSync(target, { throwIfNoEntry: false }) ? [target] : [];
  const self = new Map<string, { name: string; where: string; ms: number }>();
  const groups = new Map<string, number>();
  let totalMs = 0;
  for (const file of files) {
    const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    for (let i = 0; i < p.samples.length; i++) {
      const node = byId.get(p.samples[i] as number);
      if (!node) continue;
      const ms = (p.timeDeltas[i] ?? 0) / 1000;
      totalMs += ms;
      const cf = node.callFrame;
      const name = cf.functionName || '(anonymous)';
      const where = cf.url ? `${short(cf.url)}:${cf.lineNumber + 1}` : '';
      const key = `${name}@${where}`;
      const e = self.get(key) ?? { name, where, ms: 0 };
      e.ms += ms;
      self.set(key, e);
      const g = groupOf(cf.url, cf.functionName);
      groups.set(g, (groups.get(g) ?? 0) + ms);
    }
  }
  const idle = (groups.get('(idle)') ?? 0) + (groups.get('(root)') ?? 0);
  const busyMs = totalMs - idle;
  const share = (ms: number) => (busyMs > 0 ? ms / busyMs : 0);
  return {
    files,
    totalMs,
    busyMs,
    top: [...self.values()].filter((e) => e.name !== '(idle)' && e.name !== '(root)').sort((a, b) => b.ms - a.ms).slice(0, top)
      .map((e) => ({ name: e.name, where: e.where, selfMs: e.ms, share: share(e.ms) })),
    groups: [...groups.entries()].filter(([g]) => g !== '(idle)' && g !== '(root)').sort((a, b) => b[1] - a[1]).slice(0, 20)
      .map(([group, ms]) => ({ group, selfMs: ms, share: share(ms) })),
  };
}

export function formatProfile(s: ProfileSummary): string {
  if (s.files.length === 0) return 'CPU profile: none written (the gateway must exit cleanly for --cpu-prof to write it)\n';
  const pct = (v: number) => `${(v * 100).toFixed(1).padStart(5)} %`;
  const lines = [`Gateway CPU profile: ${s.files.map((f) => path.basename(f)).join(', ')} — busy ${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms sampled (includes start-up)`];
  lines.push('  self time by source:');
  for (const g of s.groups) lines.push(`    ${pct(g.share)}  ${g.selfMs.toFixed(0).padStart(7)} ms  ${g.group}`);
  lines.push('  top functions by self time:');
  for (const e of s.top) lines.push(`    ${pct(e.share)}  ${e.selfMs.toFixed(0).padStart(7)} ms  ${e.name}  ${e.where}`);
  return lines.join('\n') + '\n';
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const target = process.argv[2];
  if (!target) {
    process.stderr.write('usage: node --import tsx bench/profile-summary.ts <dir-or-.cpuprofile> [top]\n');
    process.exitCode = 2;
  } else {
    process.stdout.write(formatProfile(summariseProfiles(target, Number(process.argv[3] ?? 25))));
  }
}
