// Owns: recognising a gateway refusal (407: no or bad proxy token; 403: policy denial) in the
// errors and statuses the clients see, so the bench stops with a clear reason instead of
// reporting the speed of error pages.
export class ProxyRefusedError extends Error {
  constructor(readonly status: number, detail: string) {
    super(
      status === 407
        ? `the gateway answered 407 Proxy Authentication Required (${detail}): it wants a proxy token and the bench sent none, ` +
          'or one it refused. issueBenchToken() in bench/lib/gateway.ts gets one with `tollgate token issue --user bench@example.com --team bench` ' +
          '(skipped with --no-token, or when the CLI has no `token issue`); the figures would be the speed of 407 pages, so the bench stops.'
        : `the gateway refused a bench request with ${status} (${detail}). The bench policy (policies/bench.yaml in the bench's temp dir, ` +
          'written by benchConfigFiles() in bench/lib/gateway.ts) should allow it; check the decision in the gateway log.',
    );
    this.name = 'ProxyRefusedError';
  }
}

/** A ProxyRefusedError when `err` says that the gateway refused with 407 or 403; otherwise undefined. */
export function classifyFailure(err: unknown): ProxyRefusedError | undefined {
  if (err instanceof ProxyRefusedError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (/\b407\b/.test(msg)) return new ProxyRefusedError(407, msg);
  if (/Proxy response \(403\)/.test(msg)) return new ProxyRefusedError(403, msg);
  return undefined;
}

/** Throws for a gateway refusal status; other non-2xx statuses are ordinary errors. */
export function checkStatus(status: number, headers: Record<string, string | string[] | undefined>, what: string): void {
  if (status >= 200 && status < 300) return;
  const decision = headers['x-tollgate-decision'];
  if (status === 407 || (status === 403 && decision !== undefined)) {
    throw new ProxyRefusedError(status, `${what}${decision ? `, X-Tollgate-Decision: ${String(decision)}` : ''}${headers['x-tollgate-reason'] ? `, reason ${String(headers['x-tollgate-reason'])}` : ''}`);
  }
  throw new Error(`${what}: unexpected status ${status}${decision ? ` (X-Tollgate-Decision: ${String(decision)}, reason ${String(headers['x-tollgate-reason'] ?? '?')})` : ''}`);
}
