// Owns: keeping the compiled policy in force — loading it at start (fatal when invalid), watching
// org.yaml and the policies folder, recompiling on change, and swapping the frozen result in one
// assignment. An invalid change is rejected with its problems logged; the last good policy stays.
// So is a valid change that would newly let a team reach non-public addresses (security case 7.05),
// unless `allowNonPublicWidening`: that takes a restart, an explicit act.
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { formatProblem, TollgateError, type Problem } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { nonPublicWidening } from '../policy/address-widening.ts';
import type { CompiledPolicySet } from '../policy/types.ts';
import { loadOrgAndPolicies } from './policy-source.ts';

export interface PolicyStatus {
  ok: boolean;
  generation: number;
  loadedAt: string;
  lastError: string | undefined;
  lastErrorAt: string | undefined;
  warnings: number;
}

export interface PolicyReloader {
  current(): CompiledPolicySet;
  status(): PolicyStatus;
  /** Recompile now; returns the problems when the new policy was rejected. */
  reload(trigger: string): { ok: true } | { ok: false; problems: readonly Problem[] };
  close(): void;
}

export interface PolicyReloaderOptions {
  orgFile: string;
  policiesDir: string;
  secretExists: (name: string) => boolean;
  logger: Logger;
  watch?: boolean;
  debounceMs?: number;
  /**
   * Apply a reload that lets a team reach non-public addresses it could not reach before
   * (tollgate.yaml `policy_reload.allow_non_public`; default false: such a reload is rejected).
   */
  allowNonPublicWidening?: boolean;
  /** Called after each attempt (audit events, metrics). */
  onReload?: (event: { ok: boolean; trigger: string; generation: number; problems: readonly Problem[] }) => void;
}

export function startPolicyReloader(opts: PolicyReloaderOptions): PolicyReloader {
  const load = () => loadOrgAndPolicies({ orgFile: opts.orgFile, policiesDir: opts.policiesDir, secretExists: opts.secretExists });
  const first = load();
  if (!first.ok) {
    throw new TollgateError('TOLLGATE_ERR_CONFIG_INVALID', 'the organisation or policy files are invalid; the gateway does not start with a broken policy', { problems: first.problems });
  }
  for (const w of first.warnings) opts.logger.warn('policy warning', { problem: formatProblem(w) });
  let current = first.bundle;
  let generation = 1;
  const status: PolicyStatus = { ok: true, generation, loadedAt: new Date().toISOString(), lastError: undefined, lastErrorAt: undefined, warnings: first.warnings.length };

  function reject(trigger: string, problems: readonly Problem[]): { ok: false; problems: readonly Problem[] } {
    status.ok = false;
    status.lastError = problems.map(formatProblem).join('\n');
    status.lastErrorAt = new Date().toISOString();
    opts.logger.error('policy reload rejected; the last good policy stays in force', { trigger, generation, problems: problems.map(formatProblem) });
    opts.onReload?.({ ok: false, trigger, generation, problems });
    return { ok: false, problems };
  }

  function reload(trigger: string): { ok: true } | { ok: false; problems: readonly Problem[] } {
    const r = load();
    if (!r.ok) return reject(trigger, r.problems);
    const widening = opts.allowNonPublicWidening === true ? [] : nonPublicWidening(current, r.bundle);
    if (widening.length > 0) return reject(trigger, widening);
    current = r.bundle; // one assignment: requests decided after this line see only the new policy
    generation++;
    Object.assign(status, { ok: true, generation, loadedAt: new Date().toISOString(), lastError: undefined, lastErrorAt: undefined, warnings: r.warnings.length });
    for (const w of r.warnings) opts.logger.warn('policy warning', { problem: formatProblem(w) });
    opts.logger.info('policy reloaded', { trigger, generation });
    opts.onReload?.({ ok: true, trigger, generation, problems: [] });
    return { ok: true };
  }

  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  if (opts.watch !== false) {
    const schedule = (what: string) => {
      clearTimeout(timer);
      timer = setTimeout(() => reload(`file change: ${what}`), opts.debounceMs ?? 250);
      timer.unref();
    };
    const orgDir = path.dirname(path.resolve(opts.orgFile));
    const orgName = path.basename(opts.orgFile);
    try {
      watchers.push(watch(orgDir, (_e, name) => { if (name === orgName) schedule(orgName); }));
      watchers.push(watch(opts.policiesDir, { recursive: true }, (_e, name) => { if (name && /\.ya?ml$/.test(String(name))) schedule(String(name)); }));
    } catch (err) {
      opts.logger.warn('cannot watch policy files; reload with SIGHUP', { error: String(err) });
    }
    for (const w of watchers) { w.on('error', () => undefined); w.unref(); }
  }

  return {
    current: () => current,
    status: () => ({ ...status }),
    reload,
    close() {
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
