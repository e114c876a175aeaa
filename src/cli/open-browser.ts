// Owns: opening a URL in the user's browser (`open` on macOS, `xdg-open` elsewhere, `start` on
// Windows). Resolves false when no browser can be started (no display, command missing), so the
// caller prints the URL instead. TOLLGATE_NO_BROWSER=1 never tries.
import { spawn } from 'node:child_process';

export function openBrowser(url: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if (env['TOLLGATE_NO_BROWSER'] === '1') return Promise.resolve(false);
  const platform = process.platform;
  if (platform === 'linux' && !env['DISPLAY'] && !env['WAYLAND_DISPLAY']) return Promise.resolve(false);
  const [cmd, args] = platform === 'darwin' ? ['open', [url]] : platform === 'win32' ? ['cmd', ['/c', 'start', '""', url]] : ['xdg-open', [url]];
  return new Promise((resolve) => {
    try {
      const child = spawn(cmd, args as string[], { stdio: 'ignore', detached: true });
      child.once('error', () => resolve(false));
      child.once('spawn', () => {
        child.unref();
        resolve(true);
      });
    } catch {
      resolve(false);
    }
  });
}
