// Owns: the pipeline stage that applies the pure injection plan — drops every client copy of the
// provider's key headers, sets the bound secrets (resolved by name at request time), rewrites the
// query, or re-signs the request with AWS SigV4 — and refuses a placeholder headed elsewhere.
import { findPlaceholderLeak, planInjection, renderHeaderValue, renderQueryPair } from '../credentials/plan-injection.ts';
import { parseAwsAuthorization, inferRegionService, parseAwsSecret, signAwsRequest } from '../credentials/aws-sigv4.ts';
import type { SecretSource } from '../credentials/secret-source.ts';
import type { CompiledPolicySet, CredentialBindingRef } from '../policy/types.ts';
import { RequestRefusal } from '../errors.ts';
import type { Stage } from '../proxy/exchange.ts';
import { asciiLower } from '../classify/request-framing.ts';

const AWS_BODY_LIMIT = 8 * 1024 * 1024;

export function injectCredentialsStage(deps: { secrets: SecretSource; current: () => CompiledPolicySet; now?: () => Date }): Stage {
  const now = deps.now ?? (() => new Date());
  return async (ex) => {
    const bindings = (ex.notes['credentials'] as readonly CredentialBindingRef[] | undefined) ?? [];
    const hostBound = ex.notes['hostBound'] === true;
    if (bindings.length === 0) {
      // A binding for this host that does not cover this path (Claude Code telemetry next to /v1/**)
      // is not a leak: the placeholder goes nowhere foreign.
      const leak = findPlaceholderLeak(ex.headers, deps.current().placeholders, hostBound, ex.query);
      if (leak) throw new RequestRefusal('credential_reflected', leak.message);
      if (!hostBound) {
        ex.headers = ex.headers.filter(([n]) => asciiLower(n) !== 'proxy-authorization');
        return;
      }
      // Still a bound host: the plan drops the client's key or placeholder (neither a dummy nor a
      // personal key reaches the provider), and injects nothing.
    }
    const plan = planInjection(bindings, { host: ex.host, headers: ex.headers, query: ex.query, hostBound });
    if (!plan.ok) throw new RequestRefusal(plan.reason, plan.message);
    const remove = new Set(plan.removeHeaders);
    const clientAws = ex.headers.find(([n]) => asciiLower(n) === 'authorization')?.[1];
    let headers = ex.headers.filter(([n]) => !remove.has(asciiLower(n)));
    for (const h of plan.setHeaders) {
      const secret = deps.secrets.get(h.secret);
      if (secret === undefined) throw new RequestRefusal('credential_unavailable', `The secret "${h.secret}" bound for ${ex.host} is not configured on the gateway.`);
      const value = renderHeaderValue(h, secret);
      if (value === null) throw new RequestRefusal('credential_unavailable', `The secret "${h.secret}" cannot be sent in a header.`);
      headers.push([h.name, value]);
    }
    if (plan.removeQuery.length || plan.setQuery.length) {
      const drop = new Set(plan.removeQuery);
      const parts = ex.query ? ex.query.split('&').filter((p) => !drop.has(p.split('=')[0] ?? '')) : [];
      for (const q of plan.setQuery) {
        const secret = deps.secrets.get(q.secret);
        if (secret === undefined) throw new RequestRefusal('credential_unavailable', `The secret "${q.secret}" bound for ${ex.host} is not configured on the gateway.`);
        parts.push(renderQueryPair(q, secret));
      }
      ex.query = parts.join('&');
    }
    if (plan.aws) {
      const raw = deps.secrets.get(plan.aws.secret);
      if (raw === undefined) throw new RequestRefusal('credential_unavailable', `The secret "${plan.aws.secret}" bound for ${ex.host} is not configured on the gateway.`);
      const fromClient = clientAws ? parseAwsAuthorization(clientAws) : null;
      const inferred = inferRegionService(ex.host);
      const region = plan.aws.region ?? fromClient?.region ?? inferred?.region;
      const service = plan.aws.service ?? fromClient?.service ?? inferred?.service;
      if (!region || !service) throw new RequestRefusal('malformed_request', `Cannot tell the AWS region and service for ${ex.host}; set aws.region and aws.service on the binding.`);
      const body = ex.body.present ? await ex.body.buffer(AWS_BODY_LIMIT) : new Uint8Array();
      try {
        headers = signAwsRequest({
          method: ex.method, host: ex.host, path: ex.path ?? '/', query: ex.query, headers,
          body, credentials: parseAwsSecret(raw), region, service, now: now(),
        }).headers.filter(([n]) => asciiLower(n) !== 'host');
      } catch (err) {
        throw new RequestRefusal('malformed_request', `The request cannot be re-signed for AWS: ${(err as Error).message}`);
      }
    }
    ex.headers = headers;
    ex.notes['injected'] = plan.bindings;
  };
}
