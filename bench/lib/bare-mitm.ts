// Owns: starting the bench's bare Node MITM child (bench/lib/bare-mitm-server.ts) and reading its CPU.
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { procCpuMicros } from './proc.ts';

export interface BareMitm {
  pid: number;
  proxyUrl: string;
  cpuMicros(): number;
  stop(): void;
}

const here = path.dirname(fileURLToPath(import.meta.url));

export async function startBareMitm(o: { upstreamPort: number; upstreamCaPem: string; certPem: string; keyPem: string }): Promise<BareMitm> {
  const child = fork(path.join(here, 'bare-mitm-server.ts'), [], {
    execArgv: [...(process.env['TOLLGATE_BENCH_BARE_PROF'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['TOLLGATE_BENCH_BARE_PROF']}`] : []), '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the bare MITM child');
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { type: string; port: number }) => { if (m.type === 'ready') resolve(m.port); });
    child.once('exit', (code) => reject(new Error(`the bare MITM child exited (${code})`)));
    child.send({ type: 'start', ...o });
  });
  return {
    pid,
    proxyUrl: `http://127.0.0.1:${port}`,
    cpuMicros: () => procCpuMicros(pid),
    stop: () => { child.kill('SIGTERM'); },
  };
}
