// Owns: what each desktop tool needs to send its traffic through the gateway — printed by
// `tollgate setup <tool>`. PURE: text from the proxy URL and the CA bundle path.
import { PLACEHOLDER_KEY, redactProxyUrl } from './claude-settings.ts';

export const TOOLS = ['claude-code', 'cursor', 'codex', 'curl', 'git', 'python', 'node', 'aws', 'kubectl'] as const;
export type ToolName = (typeof TOOLS)[number];

export function isToolName(s: string): s is ToolName {
  return (TOOLS as readonly string[]).includes(s);
}

export interface ToolContext {
  proxyUrl: string;
  caBundlePath: string;
  /** Show the token (only when the output goes into a file the user asked for). */
  revealToken?: boolean;
}

export function toolInstructions(tool: ToolName, ctx: ToolContext): string {
  const proxy = ctx.revealToken ? ctx.proxyUrl : redactProxyUrl(ctx.proxyUrl);
  const ca = ctx.caBundlePath;
  const note = ctx.revealToken ? '' : '\n(The token is shown as ***; `eval "$(tollgate env)"` sets the real values.)\n';
  switch (tool) {
    case 'claude-code':
      return `Claude Code reads ~/.claude/settings.json; \`tollgate setup claude-code\` merges this "env" block into it:\n` +
        `  HTTPS_PROXY=${proxy}\n  HTTP_PROXY=${proxy}\n  NODE_EXTRA_CA_CERTS=${ca}\n  ANTHROPIC_API_KEY=${PLACEHOLDER_KEY}   (the gateway injects the real key)\n${note}`;
    case 'cursor':
      return [
        'Cursor (a VS Code fork) does not read HTTPS_PROXY for its AI features; set its proxy in the user settings',
        '(Linux ~/.config/Cursor/User/settings.json, macOS ~/Library/Application Support/Cursor/User/settings.json):',
        `  "http.proxy": "${proxy}",`,
        '  "http.proxySupport": "override",',
        '  "http.proxyStrictSSL": true,',
        '  "http.systemCertificates": true',
        `Trust the gateway's CA in the operating system (the bundle is ${ca}):`,
        '  macOS:  sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ca.pem',
        '  Debian: sudo cp ca.pem /usr/local/share/ca-certificates/tollgate.crt && sudo update-ca-certificates',
        "  (ca.pem: `tollgate ca export` on the gateway, or the login's CA file)",
        "Cursor's model calls go to Cursor's own servers (api2.cursor.sh …): the team policy must allow them.",
        'Start Cursor from a shell after `eval "$(tollgate env)"` so its terminal and extensions use the gateway too.',
        note,
      ].join('\n');
    case 'codex':
      return `OpenAI Codex CLI honours the proxy and CA variables; start it from a shell configured with:\n` +
        `  eval "$(tollgate env)"     # HTTPS_PROXY, SSL_CERT_FILE=${ca}, OPENAI_API_KEY=${PLACEHOLDER_KEY}\n` +
        `or run it in the sandbox: tollgate run -- codex\n`;
    case 'curl':
      return `curl reads https_proxy/HTTPS_PROXY and CURL_CA_BUNDLE:\n  curl -x '${proxy}' --cacert ${ca} https://api.github.com/\n` +
        `or eval "$(tollgate env)" and plain curl. CURL_CA_BUNDLE replaces curl's roots, hence the bundle (system roots + Tollgate's CA).\n${note}`;
    case 'git':
      return `git reads HTTPS_PROXY and GIT_SSL_CAINFO (or: git config --global http.proxy '${proxy}'; git config --global http.sslCAInfo ${ca}).\n` +
        `GIT_SSL_CAINFO replaces git's roots, hence the bundle.\n${note}`;
    case 'python':
      return `requests/httpx/pip read HTTPS_PROXY; requests verifies with REQUESTS_CA_BUNDLE, httpx and urllib with SSL_CERT_FILE:\n` +
        `  export HTTPS_PROXY='${proxy}' REQUESTS_CA_BUNDLE=${ca} SSL_CERT_FILE=${ca}\n` +
        `The Anthropic and OpenAI SDKs (httpx) then work with ANTHROPIC_API_KEY=${PLACEHOLDER_KEY} / OPENAI_API_KEY=${PLACEHOLDER_KEY}.\n${note}`;
    case 'node':
      return `Node.js adds NODE_EXTRA_CA_CERTS=${ca} to its roots. Node's built-in fetch and https do NOT honour HTTPS_PROXY\n` +
        `(Node 20): use undici's EnvHttpProxyAgent (setGlobalDispatcher(new EnvHttpProxyAgent())), or an SDK option\n` +
        `(the Anthropic/OpenAI SDKs take an httpAgent/fetchOptions dispatcher). Claude Code handles HTTPS_PROXY itself.\n`;
    case 'kubectl':
      return `\`tollgate setup kubectl --project P\` writes\n` +
        `~/.kube/tollgate-config with one context per Kubernetes connection of the project: proxy-url through the gateway, Tollgate's CA,\n` +
        `and no Kubernetes credentials (the gateway injects the cluster token). Then: KUBECONFIG=~/.kube/tollgate-config kubectl get pods\n`;
    case 'aws':
      return `The AWS CLI and SDKs read HTTPS_PROXY and AWS_CA_BUNDLE=${ca} (it replaces their roots, hence the bundle).\n` +
        `With an aws: credential binding the gateway re-signs requests, so any syntactically valid dummy keys work:\n` +
        `  AWS_ACCESS_KEY_ID=tollgate AWS_SECRET_ACCESS_KEY=tollgate-placeholder aws sts get-caller-identity\n`;
  }
}
