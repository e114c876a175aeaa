// Owns: the sandbox launch plan — what `tollgate run` and the agent supervisor will execute, as
// plain data: the steps, the command's argv and its environment. PURE: no I/O, no clock; the shell
// (launch-sandbox.ts) carries the plan out.
//
// The shape: the command runs in new user and network namespaces that hold nothing but a loopback
// interface. A small holder process, started inside the namespaces, brings `lo` up, listens on
// 127.0.0.1:<port> there and hands that listening socket to the launching process over Node's IPC
// channel; the launcher accepts on it and connects each connection to the gateway. That listener is
// the only endpoint the command can reach: there is no route, no other interface and no DNS server
// in its network namespace, so a direct TCP or UDP connection fails in the kernel (ENETUNREACH or
// ECONNREFUSED). The user namespace keeps the command from joining the host's network namespace
// again (setns needs CAP_SYS_ADMIN over the host's user namespace, which it does not have).
import { CA_VARIABLES, NO_PROXY_VARIABLES, PROXY_VARIABLES, proxyEnvironment } from './proxy-environment.ts';

export type SandboxMode = 'namespace' | 'none';

export interface SandboxTools {
  unshare: string;
  nsenter: string;
  ip: string;
  /** The Node.js executable that runs the holder. */
  node: string;
  /** A POSIX shell, used to close the namespace descriptors before the command starts. */
  sh: string;
}

export interface PlanSandboxInput {
  command: readonly string[];
  /** The environment the command inherits (usually process.env). */
  env: Readonly<Record<string, string | undefined>>;
  /** The gateway as the launcher reaches it, with credentials: `http://<scope>:<token>@host:port`. */
  proxyUrl: string;
  /** PEM bundle of the system roots plus Tollgate's CA. */
  caBundlePath: string;
  /** `none` = --no-sandbox: only the environment, nothing enforced. Default `namespace`. */
  mode?: SandboxMode;
  /** Required for `namespace`. */
  tools?: SandboxTools;
  /** Path of namespace-holder.mjs. Required for `namespace`. */
  holderScript?: string;
  /** Loopback port inside the namespace; default the gateway's port. */
  listenPort?: number;
  /** Extra variables for the command (agent name, placeholders); applied last. */
  extraEnv?: Readonly<Record<string, string>>;
}

export interface Endpoint { host: string; port: number }

export type SandboxStep =
  | { kind: 'warn'; text: string }
  | { kind: 'create-namespaces'; argv: string[]; text: string }
  | { kind: 'bring-up-loopback'; argv: string[]; text: string }
  | { kind: 'bridge'; listen: Endpoint; target: Endpoint; text: string }
  | { kind: 'exec'; argv: string[]; text: string };

export interface SandboxPlan {
  mode: SandboxMode;
  steps: SandboxStep[];
  /** What is spawned for the command: in `namespace` mode nsenter (with the namespace descriptors
   *  at fds 3 and 4), then a shell that closes them and execs the command. */
  argv: string[];
  env: Record<string, string>;
  /** `namespace` mode only: how the holder is started, and the bridge it makes possible. */
  holder: { argv: string[] } | undefined;
  bridge: { listen: Endpoint; target: Endpoint } | undefined;
  /** Fds (in the spawned process) where the launcher puts the user and network namespace handles. */
  namespaceFds: { user: number; net: number } | undefined;
  /** The proxy URL the command sees. */
  innerProxyUrl: string;
}

export class SandboxPlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SandboxPlanError';
  }
}

export const NO_SANDBOX_WARNING =
  'tollgate: WARNING: --no-sandbox: the command runs WITHOUT network isolation. The proxy variables are ' +
  'advisory only: any process that ignores or unsets them reaches the network directly, bypassing policy, ' +
  'credentials and audit. Use it only where namespaces are unavailable.';

/** Splits `http://user:pass@host:port` into the endpoint and the credentials part. */
export function parseProxyUrl(proxyUrl: string): { endpoint: Endpoint; auth: string } {
  let url: URL;
  try {
    url = new URL(proxyUrl);
  } catch {
    throw new SandboxPlanError(`the proxy URL is not a URL`);
  }
  if (url.protocol !== 'http:') throw new SandboxPlanError(`the proxy URL must start with http:// (got ${url.protocol}//)`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port === '' ? 80 : Number(url.port);
  const auth = url.username === '' && url.password === '' ? '' : `${url.username}:${url.password}@`;
  return { endpoint: { host, port }, auth };
}

const INNER_HOST = '127.0.0.1';
const NS_FDS = { user: 3, net: 4 } as const;

function commandEnv(input: PlanSandboxInput, proxyUrl: string, sandboxed: boolean): Record<string, string> {
  const drop = new Set<string>([...PROXY_VARIABLES, ...NO_PROXY_VARIABLES, ...CA_VARIABLES]);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.env)) if (v !== undefined && !drop.has(k) && !k.startsWith('NODE_CHANNEL_')) env[k] = v;
  for (const [k, v] of proxyEnvironment({ proxyUrl, caBundlePath: input.caBundlePath })) env[k] = v;
  env['TOLLGATE_SANDBOX'] = sandboxed ? 'namespace' : 'none';
  for (const [k, v] of Object.entries(input.extraEnv ?? {})) env[k] = v;
  return env;
}

/** The launch plan. Throws SandboxPlanError on unusable input. */
export function planSandbox(input: PlanSandboxInput): SandboxPlan {
  if (input.command.length === 0 || input.command[0] === '') throw new SandboxPlanError('no command to run (tollgate run -- COMMAND …)');
  const { endpoint: target, auth } = parseProxyUrl(input.proxyUrl);
  const mode = input.mode ?? 'namespace';
  if (mode === 'none') {
    return {
      mode,
      steps: [
        { kind: 'warn', text: NO_SANDBOX_WARNING },
        { kind: 'exec', argv: [...input.command], text: `run ${input.command[0]} with the proxy variables set and no isolation` },
      ],
      argv: [...input.command],
      env: commandEnv(input, input.proxyUrl, false),
      holder: undefined,
      bridge: undefined,
      namespaceFds: undefined,
      innerProxyUrl: input.proxyUrl,
    };
  }
  const tools = input.tools;
  if (tools === undefined || input.holderScript === undefined) throw new SandboxPlanError('namespace mode needs the tools (unshare, nsenter, ip, node, sh) and the holder script');
  const listen: Endpoint = { host: INNER_HOST, port: input.listenPort ?? target.port };
  if (!Number.isInteger(listen.port) || listen.port < 1 || listen.port > 65535) throw new SandboxPlanError(`listen port ${listen.port} is out of range`);
  const innerProxyUrl = `http://${auth}${INNER_HOST}:${listen.port}`;
  // --map-root-user: the holder needs CAP_NET_ADMIN inside to bring lo up (root stays uid 0; another
  // user appears as root inside, owning nothing more than before).
  const holderArgv = [tools.unshare, '--user', '--map-root-user', '--net', '--', tools.node, input.holderScript, tools.ip, listen.host, String(listen.port)];
  const loopback = [tools.ip, 'link', 'set', 'lo', 'up'];
  const argv = [
    tools.nsenter, `--user=/proc/self/fd/${NS_FDS.user}`, `--net=/proc/self/fd/${NS_FDS.net}`, '--',
    tools.sh, '-c', `exec ${NS_FDS.user}<&- ${NS_FDS.net}<&- && exec "$@"`, 'tollgate-sandbox', ...input.command,
  ];
  return {
    mode,
    steps: [
      { kind: 'create-namespaces', argv: holderArgv, text: 'create a user namespace and a network namespace that holds only a loopback interface (no route, no DNS)' },
      { kind: 'bring-up-loopback', argv: loopback, text: `inside, bring lo up and listen on ${listen.host}:${listen.port}; hand the listening socket to the launcher` },
      { kind: 'bridge', listen, target, text: `connect every connection accepted on ${listen.host}:${listen.port} (inside) to the gateway at ${target.host}:${target.port}` },
      { kind: 'exec', argv, text: `run ${input.command[0]} in both namespaces with HTTPS_PROXY=http://…@${listen.host}:${listen.port}` },
    ],
    argv,
    env: commandEnv(input, innerProxyUrl, true),
    holder: { argv: holderArgv },
    bridge: { listen, target },
    namespaceFds: { ...NS_FDS },
    innerProxyUrl,
  };
}
