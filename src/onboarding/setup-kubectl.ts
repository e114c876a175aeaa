// Owns: `tollgate setup kubectl --project P` as I/O — the project's connections from org.yaml (the
// gateway's configuration named by --config), the user's proxy URL and Tollgate's CA, and the
// kubeconfig file: read, merged (kubeconfig.ts), written atomically with mode 0600 (it holds the
// gateway token; write-file-atomic.ts), never written over a file that does not parse as a
// kubeconfig, and shown by --print with every secret redacted.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Document } from 'yaml';
import { loadGatewayConfig } from '../config/gateway-config.ts';
import { parseOrgConfig } from '../config/org-config.ts';
import { TollgateError } from '../errors.ts';
import type { OrgConfig } from '../policy/types.ts';
import { KUBECONFIG_STRINGIFY, kubeconfigEntries, KubeconfigShapeError, mergeKubeconfigDocument, parseKubeconfig, redactedKubeconfig } from './kubeconfig.ts';
import { resolveClient } from './resolve-client.ts';
import { writeFileAtomic } from '../store/write-file-atomic.ts';

export function defaultKubeconfigFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env['HOME'] ?? os.homedir(), '.kube', 'tollgate-config');
}

/** org.yaml of the gateway configuration `configFile` (default $TOLLGATE_CONFIG or ./tollgate.yaml). */
export function loadOrgForClient(configFile: string | undefined, env: NodeJS.ProcessEnv = process.env): OrgConfig {
  const file = configFile ?? env['TOLLGATE_CONFIG'] ?? 'tollgate.yaml';
  if (!existsSync(file)) {
    throw new TollgateError('TOLLGATE_ERR_CONFIG_NOT_FOUND', `${file} not found: tollgate setup kubectl reads the project's connections from org.yaml; pass --config with the gateway's tollgate.yaml (a checkout of your organisation's Tollgate configuration)`);
  }
  const orgFile = loadGatewayConfig(file, env).org;
  let text: string;
  try {
    text = readFileSync(orgFile, 'utf8');
  } catch (err) {
    throw new TollgateError('TOLLGATE_ERR_CONFIG_NOT_FOUND', `cannot read ${orgFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const parsed = parseOrgConfig(orgFile, text);
  if (!parsed.ok) throw new TollgateError('TOLLGATE_ERR_CONFIG_INVALID', `${orgFile} is invalid`, { problems: parsed.problems });
  return parsed.parsed.org;
}

function readKubeconfig(file: string): Document {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const doc = parseKubeconfig(text);
  const error = doc.errors[0];
  if (error !== undefined) {
    throw new TollgateError('TOLLGATE_ERR_USAGE', `${file} is not valid YAML (${error.message.split('\n')[0]}); fix or move it — tollgate never overwrites a file it cannot read`);
  }
  return doc;
}

export interface SetupKubectlOptions {
  project: string;
  team?: string | undefined;
  caFile?: string | undefined;
  configFile?: string | undefined;
  /** The kubeconfig to write (default ~/.kube/tollgate-config). */
  kubeconfig?: string | undefined;
  /** Show the result (every secret redacted) and write nothing. */
  print?: boolean | undefined;
  env?: NodeJS.ProcessEnv;
}

export interface SetupKubectlResult {
  file: string;
  written: boolean;
  contexts: string[];
  changes: string[];
  skipped: Array<{ connection: string; reason: string }>;
  /** With `print`: the merged kubeconfig with every secret redacted (what --print shows). */
  redactedText?: string;
}

export function setupKubectl(opts: SetupKubectlOptions): SetupKubectlResult {
  const env = opts.env ?? process.env;
  const org = loadOrgForClient(opts.configFile, env);
  const project = org.projects.get(opts.project);
  if (!project) {
    throw new TollgateError('TOLLGATE_ERR_USAGE', `unknown project "${opts.project}"; org.yaml defines ${[...org.projects.keys()].join(', ') || 'no projects'}`);
  }
  const kube = project.connections.filter((c) => c.kind === 'kubernetes');
  if (kube.length === 0) throw new TollgateError('TOLLGATE_ERR_USAGE', `project ${project.key} has no kind: kubernetes connection in org.yaml`);
  const client = resolveClient({ team: opts.team, project: opts.project, caFile: opts.caFile, configFile: opts.configFile, env });
  const team = client.scope?.split('.')[0];
  const grant = team === undefined ? undefined : org.teams.get(team)?.grants.get(project.key);
  if (team !== undefined && org.teams.has(team) && grant === undefined) {
    throw new TollgateError('TOLLGATE_ERR_USAGE', `team ${team} has no grant on project ${project.key} in org.yaml; the gateway would refuse every request`);
  }
  const caPem = readFileSync(client.caFile, 'utf8');
  const entries = kubeconfigEntries({ project: project.key, connections: kube, proxyUrl: client.proxyUrl, caPem });
  if (entries.clusters.length === 0) {
    throw new TollgateError('TOLLGATE_ERR_USAGE', `no cluster to write for project ${project.key}: ${entries.skipped.map((s) => `connection ${s.connection}: ${s.reason}`).join('; ')}`);
  }
  const file = opts.kubeconfig ?? defaultKubeconfigFile(env);
  const doc = readKubeconfig(file);
  let changes: string[];
  try {
    changes = mergeKubeconfigDocument(doc, entries);
  } catch (err) {
    if (err instanceof KubeconfigShapeError) throw new TollgateError('TOLLGATE_ERR_USAGE', `${file} is not a kubeconfig tollgate can merge into: ${err.message}; fix or move it, or pass --kubeconfig`);
    throw err;
  }
  const result = { file, written: false, contexts: entries.contexts.map((c) => c.name), changes, skipped: entries.skipped };
  if (opts.print) return { ...result, redactedText: redactedKubeconfig(doc).toString(KUBECONFIG_STRINGIFY) };
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, doc.toString(KUBECONFIG_STRINGIFY));
  return { ...result, written: true };
}
