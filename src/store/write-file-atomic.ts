// Owns: replacing a file others rely on — secrets (the kubeconfig, Claude Code's settings, the login
// store; mode 0600, never readable by others) and public files tools trust or read (the CA bundle,
// the agents' status; 0644) — so that it is never half written and never written through a link:
// a temporary file next to it with a random name, created exclusively (O_EXCL: an existing name,
// a symbolic link included, fails instead of being followed) with the final mode, flushed to
// disk, then renamed over the target (a link at the target is replaced, not written through).
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function writeFileAtomic(file: string, data: string, mode = 0o600): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(12).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  let renamed = false;
  try {
    try {
      fchmodSync(fd, mode); // exactly `mode`, whatever the umask took away
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    renamed = true;
  } finally {
    if (!renamed) rmSync(tmp, { force: true });
  }
  syncDir(dir);
}

/** Makes the rename durable; not every platform can open a directory (Windows), so best effort. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // the rename happened; only its durability across a crash is not confirmed
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
