// Runs INSIDE the sandbox's new user and network namespaces (started by `unshare … --net`): brings
// the loopback interface up, listens on <host>:<port> there, and hands the listening socket to the
// launcher over Node's IPC channel. The launcher keeps the namespaces alive through descriptors,
// then tells this process to exit. Plain JavaScript on purpose: it starts on every `tollgate run`
// and loading TypeScript would add about a second.
// argv: <ip executable> <host> <port>
import { execFileSync } from 'node:child_process';
import net from 'node:net';

const [ip, host, port] = process.argv.slice(2);
const fail = (message) => {
  process.stderr.write(`tollgate sandbox: ${message}\n`);
  process.exit(70);
};
if (!process.send) fail('the holder must be started with an IPC channel');
try {
  execFileSync(ip, ['link', 'set', 'lo', 'up'], { stdio: ['ignore', 'ignore', 'pipe'] });
} catch (err) {
  fail(`cannot bring up the loopback interface with ${ip}: ${String(err.stderr ?? err.message).trim()}`);
}
const server = net.createServer({ pauseOnConnect: true });
server.on('error', (err) => fail(`cannot listen on ${host}:${port} inside the namespace: ${err.message}`));
server.listen({ host, port: Number(port), exclusive: true }, () => {
  process.send({ type: 'ready', pid: process.pid }, server);
});
process.on('message', (m) => {
  if (m && m.type === 'exit') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
