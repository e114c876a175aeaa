// Owns: starting the upstream origin child (bench/lib/upstream-server.ts) with a certificate for
// every bench host, and asking it for its counters.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { procCpuMicros } from './proc.ts';

export interface UpstreamStats { tcp: number; tls: number; requests: number; uploadBytes: number }

export interface BenchUpstream {
  pid: number;
  port: number;
  stats(): Promise<UpstreamStats>;
  cpuMicros(): number;
  stop(): void;
}

const here = path.dirname(fileURLToPath(import.meta.url));

export async function startBenchUpstream(tls: { certPem: string; keyPem: string }): Promise<BenchUpstream> {
  const child: ChildProcess = fork(path.join(here, 'upstream-server.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the upstream child');
  const next = <T>(type: string) => new Promise<T>((resolve, reject) => {
    const onMsg = (m: { type: string }) => {
      if (m.type !== type) return;
      child.off('message', onMsg);
      child.off('exit', onExit);
      resolve(m as T);
    };
    const onExit = (code: number | null) => reject(new Error(`the upstream child exited (${code})`));
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
  const ready = next<{ port: number }>('ready');
  child.send({ type: 'start', ...tls });
  const { port } = await ready;
  return {
    pid,
    port,
    async stats() {
      const p = next<UpstreamStats & { type: string }>('stats');
      child.send({ type: 'stats' });
      const { type: _t, ...s } = await p;
      return s;
    },
    cpuMicros: () => procCpuMicros(pid),
    stop: () => { child.kill('SIGTERM'); },
  };
}
