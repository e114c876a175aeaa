// Owns: the environment variables that point a process at the gateway — the proxy variables (and
// their lower-case twins), and every CA variable a common client reads, all aimed at one bundle of
// the system roots plus Tollgate's CA (several clients *replace* their trust store with the file).
// PURE: no I/O.

/** Proxy variables, upper and lower case (curl reads only lower-case http_proxy). */
export const PROXY_VARIABLES = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy'] as const;
/** Variables that exempt hosts from the proxy; cleared inside the sandbox. */
export const NO_PROXY_VARIABLES = ['NO_PROXY', 'no_proxy'] as const;
/** CA variables: Node (adds to its roots), OpenSSL/Go/Ruby, Python requests, curl, git, AWS CLI/SDKs. */
export const CA_VARIABLES = ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'AWS_CA_BUNDLE'] as const;

export interface ProxyEnvironmentInput {
  /** `http://<scope>:<token>@host:port` as the client must use it. */
  proxyUrl: string;
  /** A PEM file with the system roots plus Tollgate's CA. */
  caBundlePath: string;
  /** Value for NO_PROXY/no_proxy; undefined leaves them out (the caller decides to unset or keep). */
  noProxy?: string | undefined;
}

/** The variables, in a stable order. */
export function proxyEnvironment(input: ProxyEnvironmentInput): Array<[name: string, value: string]> {
  const vars: Array<[string, string]> = [];
  for (const name of PROXY_VARIABLES) vars.push([name, input.proxyUrl]);
  if (input.noProxy !== undefined) for (const name of NO_PROXY_VARIABLES) vars.push([name, input.noProxy]);
  for (const name of CA_VARIABLES) vars.push([name, input.caBundlePath]);
  return vars;
}

/**
 * `http://<scope>:<token>@host:port`. Without a scope the token goes in the user name
 * (`http://<token>:@host:port`): some clients (Python requests) send no credentials at all when
 * the user name is empty.
 */
export function proxyUrlFor(opts: { host: string; port: number; token: string; scope?: string | undefined }): string {
  const host = opts.host.includes(':') && !opts.host.startsWith('[') ? `[${opts.host}]` : opts.host;
  const token = encodeURIComponent(opts.token);
  const auth = opts.scope === undefined || opts.scope === '' ? `${token}:` : `${encodeURIComponent(opts.scope)}:${token}`;
  return `http://${auth}@${host}:${opts.port}`;
}

/** `<team>` or `<team>.<project>`; undefined without a team. */
export function scopeName(team: string | undefined, project: string | undefined): string | undefined {
  if (team === undefined || team === '') return undefined;
  return project === undefined || project === '' ? team : `${team}.${project}`;
}
