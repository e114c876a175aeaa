// Owns: an agent's output file that rotates by size: output.log, output.log.1 … output.log.<keep>.
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

export interface RotatingLog {
  readonly file: string;
  write(chunk: string | Buffer): void;
  close(): void;
}

export function openRotatingLog(dir: string, opts: { name?: string; maxBytes?: number; keep?: number } = {}): RotatingLog {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, opts.name ?? 'output.log');
  const maxBytes = opts.maxBytes ?? 10 * 1024 * 1024;
  const keep = Math.max(1, opts.keep ?? 5);
  let fd = openSync(file, 'a', 0o640);
  let size = fstatSync(fd).size;
  const rotate = () => {
    closeSync(fd);
    rmSync(`${file}.${keep}`, { force: true });
    for (let i = keep - 1; i >= 1; i--) if (existsSync(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`);
    renameSync(file, `${file}.1`);
    fd = openSync(file, 'a', 0o640);
    size = 0;
  };
  let closed = false;
  return {
    file,
    write(chunk) {
      if (closed) return;
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (size > 0 && size + buf.length > maxBytes) rotate();
      writeSync(fd, buf);
      size += buf.length;
    },
    close() {
      if (closed) return;
      closed = true;
      closeSync(fd);
    },
  };
}
