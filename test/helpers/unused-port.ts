// Test-only: a loopback TCP port that nothing listens on right now — for a listener a test configures
// by number, or for an upstream that refuses connections.
import net from 'node:net';

export async function unusedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
