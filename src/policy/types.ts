// Owns: the shapes of the compiled policy (what `compile` produces and `decide` reads) and of a
// decision. Plain data plus precompiled matchers; deep-frozen after compilation.
import type { ReasonCode } from '../errors.ts';
import type { Cidr } from './match/address.ts';

export type HostAction = 'allow' | 'deny' | 'direct';
export type Effect = 'allow' | 'direct' | 'deny';
export type Role = 'admin' | 'member';

/** How one rule names hosts. */
export type HostPattern =
  | { readonly kind: 'exact'; readonly text: string; readonly host: string }
  | { readonly kind: 'suffix'; readonly text: string; readonly suffix: string }
  | { readonly kind: 'any'; readonly text: string }
  | { readonly kind: 'ip'; readonly text: string; readonly cidr: Cidr }
  | { readonly kind: 'cidr'; readonly text: string; readonly cidr: Cidr };

export interface PathMatcher {
  readonly glob: string;
  readonly test: (path: string) => boolean;
}

export interface CompiledHttpRule {
  /** "policies/sre.yaml:14" */
  readonly id: string;
  /** null = any method. */
  readonly methods: ReadonlySet<string> | null;
  /** null = any path. */
  readonly paths: readonly PathMatcher[] | null;
  readonly action: 'allow' | 'deny';
  readonly description: string | undefined;
  /** Plain words: "allow GET on /api/v2/**". */
  readonly explanation: string;
}

export interface CompiledRule {
  readonly id: string;
  readonly origin: 'org' | 'team' | 'agent';
  readonly host: HostPattern;
  readonly action: HostAction;
  /** null = every port (deny rules and guardrails without `ports:`). */
  readonly ports: ReadonlySet<number> | null;
  /** null = no HTTP rules (every method and path). */
  readonly http: readonly CompiledHttpRule[] | null;
  readonly description: string | undefined;
  /** Plain words: "allow api.github.com on ports 80, 443 (intercepted)". */
  readonly explanation: string;
}

/** An ordered rule table with an index for fast first-match lookup. */
export interface RuleTable {
  readonly file: string;
  readonly rules: readonly CompiledRule[];
  /** exact host → rule positions (ascending). */
  readonly exact: ReadonlyMap<string, readonly number[]>;
  /** suffix of `*.suffix` → rule positions (ascending). */
  readonly suffix: ReadonlyMap<string, readonly number[]>;
  /** positions of `*` rules. */
  readonly any: readonly number[];
  /** positions of IP and CIDR rules. */
  readonly addresses: readonly number[];
}

export type CredentialKind = 'bearer' | 'basic' | 'header' | 'query' | 'aws';

/** A credential binding, by name; never holds a secret value. */
export interface CredentialBindingRef {
  readonly name: string;
  /** "policies/sre.yaml:40" */
  readonly id: string;
  readonly kind: CredentialKind;
  readonly secret: string;
  readonly host: string;
  readonly project: string | undefined;
  /** header name for `header`, "authorization" for bearer/basic. */
  readonly headerName: string | undefined;
  /** `{secret}` marks where the secret goes. */
  readonly template: string | undefined;
  readonly username: string | undefined;
  readonly queryName: string | undefined;
  readonly awsRegion: string | undefined;
  readonly awsService: string | undefined;
  readonly requirePlaceholder: string | undefined;
}

export interface CompiledBinding {
  readonly ref: CredentialBindingRef;
  readonly host: HostPattern;
  readonly methods: ReadonlySet<string> | null;
  readonly paths: readonly PathMatcher[] | null;
  readonly explanation: string;
}

export interface Budget {
  readonly monthlyUsd: number | undefined;
  readonly dailyUsd: number | undefined;
}

export interface Connection {
  readonly name: string;
  readonly kind: string | undefined;
  readonly hosts: readonly string[];
  readonly ca: string | undefined;
  /** kind: kubernetes — the API server URL (its host is one of `hosts`). */
  readonly server?: string | undefined;
  readonly account: string | undefined;
}

export interface Project {
  readonly key: string;
  readonly name: string;
  readonly connections: readonly Connection[];
}

export interface Team {
  readonly key: string;
  readonly name: string;
  readonly idpGroups: readonly string[];
  readonly grants: ReadonlyMap<string, Role>;
  readonly policyFile: string;
  readonly budget: Budget | undefined;
  readonly userBudget: Budget | undefined;
}

export interface Agent {
  readonly key: string;
  readonly name: string;
  readonly team: string;
  readonly project: string | undefined;
  readonly every: string | undefined;
  readonly everySeconds: number | undefined;
  readonly command: readonly string[] | undefined;
  readonly budget: Budget | undefined;
}

export interface OrgConfig {
  readonly file: string;
  readonly organization: string;
  readonly budget: Budget | undefined;
  readonly adminGroups: readonly string[];
  readonly declaredSecrets: readonly string[] | undefined;
  readonly projects: ReadonlyMap<string, Project>;
  readonly teams: ReadonlyMap<string, Team>;
  readonly agents: ReadonlyMap<string, Agent>;
  readonly users: ReadonlyMap<string, { readonly budget: Budget | undefined }>;
}

export interface CompiledTeamPolicy {
  readonly team: string;
  readonly file: string;
  readonly table: RuleTable;
  readonly bindings: readonly CompiledBinding[];
}

export interface ProjectHostIndex {
  readonly exact: ReadonlyMap<string, readonly string[]>;
  readonly suffix: ReadonlyMap<string, readonly string[]>;
  readonly addresses: ReadonlyArray<{ readonly pattern: HostPattern; readonly project: string }>;
}

export interface CompiledPolicySet {
  readonly org: OrgConfig;
  /** org guardrails (policies/_org.yaml); empty table when absent. */
  readonly guardrails: RuleTable;
  readonly teams: ReadonlyMap<string, CompiledTeamPolicy>;
  /** agent key → its narrowing rules (only agents that have `rules:`). */
  readonly agentRules: ReadonlyMap<string, RuleTable>;
  readonly projectHosts: ProjectHostIndex;
  /** every placeholder value a binding requires, plus "tollgate-placeholder". */
  readonly placeholders: readonly string[];
  /** every rule and binding id, for test coverage ("policies/sre.yaml:12"). */
  readonly ruleIds: readonly string[];
}

export interface Principal {
  readonly team: string;
  readonly project?: string | undefined;
  readonly agent?: string | undefined;
}

export interface DecisionRequest {
  /** normalised host (lower case, no trailing dot, punycode; IPs canonical, IPv6 without brackets). */
  readonly host: string;
  readonly hostKind: 'dns' | 'ipv4' | 'ipv6';
  readonly port: number;
  /** upper-case method; "CONNECT" at tunnel time. */
  readonly method: string;
  /** normalised path without the query; undefined at CONNECT time. */
  readonly path?: string | undefined;
  readonly scheme: 'http' | 'https';
}

export type DecisionReason = ReasonCode | 'allowed' | 'direct';

export interface Decision {
  readonly effect: Effect;
  readonly reason: DecisionReason;
  /** the rule that decided, "policies/sre.yaml:12"; null when no rule matched. */
  readonly rule: string | null;
  /** every rule that matched on the way (guardrail, host rule, HTTP rule, agent rule). */
  readonly matched: readonly string[];
  readonly team: string;
  /** plain words; the same text feeds deny bodies, explain and audit. */
  readonly explanation: string;
  /** true when the tunnel must be intercepted (TLS terminated) so HTTP rules apply. */
  readonly intercept: boolean;
  readonly credentials: readonly CredentialBindingRef[];
  /**
   * true when some credential binding of the team names this host, even if none applies to this
   * method, path or project: the client's own key headers are still removed, and a placeholder
   * key may travel here (see findPlaceholderLeak). Always false at CONNECT time and for denials.
   */
  readonly hostBound: boolean;
  /** the project the request acts for, when one applies. */
  readonly project?: string | undefined;
  /** the role the team holds on that project. */
  readonly role?: Role | undefined;
}
