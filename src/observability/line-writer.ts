// Owns: getting log lines out cheaply under load — the lines written during one turn of the event
// loop leave in one write at the end of that turn (setImmediate), or sooner when the buffer passes
// `maxBufferBytes`, instead of one write(2) per line. Order is kept; the buffer is flushed when the
// process exits.

export interface LineWriter {
  write(line: string): void;
  /** Writes what is buffered now. */
  flush(): void;
}

export function createLineWriter(sink: (chunk: string) => void, maxBufferBytes = 64 * 1024): LineWriter {
  let buffer = '';
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (buffer === '') return;
    const out = buffer;
    buffer = '';
    sink(out);
  };
  return {
    write(line) {
      buffer += line;
      if (buffer.length >= maxBufferBytes) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}

/**
 * The process's stdout as a LineWriter (Node writes to files and pipes synchronously, so the flush
 * at exit lands).
 */
export function stdoutLineWriter(): LineWriter {
  const w = createLineWriter((chunk) => process.stdout.write(chunk));
  process.on('exit', () => w.flush());
  return w;
}
