// Owns: the pipeline stage that resolves the exchange's host once and records the one vetted
// address the forwarder will dial (DNS rebinding cannot change it afterwards).
import type { ParsedIp } from '../classify/ip-address.ts';
import type { Exchange, Stage } from '../proxy/exchange.ts';
import { vetResolution } from '../upstream/address-guard.ts';
import type { HostResolver } from '../upstream/resolver.ts';

export function resolveTargetStage(deps: {
  resolver: HostResolver;
  ownPorts: () => ReadonlySet<number>;
  /** Does a policy rule for this exchange's team name this non-public address? */
  ruleAllows: (ex: Exchange, ip: ParsedIp) => boolean;
}): Stage {
  return async (ex) => {
    const resolution = await deps.resolver.resolve(ex.host, ex.hostKind, ex.port);
    ex.target = vetResolution(ex.host, resolution, ex.port, {
      ownPorts: deps.ownPorts,
      ruleAllows: (ip) => deps.ruleAllows(ex, ip),
    });
  };
}
