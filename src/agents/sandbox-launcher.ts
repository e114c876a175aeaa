// Owns: starting one run of a managed agent in the sandbox: its own token in the proxy URL
// (scope team[.project]), a clean environment (never the supervisor's, which may hold the
// gateway's secrets), its working directory, stdout/stderr piped to the supervisor.
import { planSandbox, type SandboxTools } from '../sandbox/plan-sandbox.ts';
import { launchSandbox } from '../sandbox/launch-sandbox.ts';
import { proxyUrlFor, scopeName } from '../sandbox/proxy-environment.ts';
import type { SupervisedAgent } from './agent-spec.ts';
import type { AgentLauncher } from './supervisor.ts';

/** Variables an agent inherits from the supervisor; everything else is left behind. */
export const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'USER', 'LOGNAME'] as const;

export interface SandboxLauncherOptions {
  /** The gateway's proxy listener as this host reaches it. */
  gateway: { host: string; port: number };
  caBundlePath: string;
  /** Namespace tools; undefined = no sandbox (advisory only, for machines without namespaces). */
  tools: SandboxTools | undefined;
  holderScript: string;
  /** Working directory of agent commands (the folder of org.yaml). */
  cwd: string;
  env?: NodeJS.ProcessEnv;
}

export function agentEnvironment(agent: SupervisedAgent, env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of INHERITED_ENV) {
    const v = env[k];
    if (v !== undefined) out[k] = v;
  }
  return { ...out, ...agent.env };
}

export function createSandboxLauncher(opts: SandboxLauncherOptions): AgentLauncher {
  return async (agent, token) => {
    const proxyUrl = proxyUrlFor({ ...opts.gateway, token, scope: scopeName(agent.team, agent.project) });
    const plan = planSandbox({
      command: agent.command, env: agentEnvironment(agent, opts.env ?? process.env), proxyUrl, caBundlePath: opts.caBundlePath,
      ...(opts.tools ? { tools: opts.tools, holderScript: opts.holderScript } : { mode: 'none' as const }),
    });
    const p = await launchSandbox(plan, { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd });
    return { pid: p.pid, stdout: p.child.stdout, stderr: p.child.stderr, exited: p.exited, kill: (s) => p.kill(s) };
  };
}
