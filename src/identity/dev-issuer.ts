// Owns: dev mode's embedded OpenID Connect issuer (the `oidc-provider` package) on loopback, with
// the demo users of the Acme example org and a password-less "pick a user" sign-in page, so a
// newcomer can run `tollgate login http://127.0.0.1:9090` (browser or --device) for real.
// Signing keys are generated at start; everything lives in memory. Never for production: it
// refuses any address that is not loopback.
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type net from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import type Provider from 'oidc-provider';
import { TollgateError } from '../errors.ts';
import type { SsoIssuerConfig } from '../config/gateway-config.ts';

export interface DevUser {
  email: string;
  name: string;
  groups: string[];
}

/** The demo people of the Acme example org (org.yaml): one per team, an admin, and one with no team. */
export const DEMO_USERS: readonly DevUser[] = Object.freeze([
  { email: 'alice@acme.example', name: 'Alice (SRE)', groups: ['sre'] },
  { email: 'bob@acme.example', name: 'Bob (Support Operations)', groups: ['support-operations'] },
  { email: 'carol@acme.example', name: 'Carol (Backend Engineering)', groups: ['backend-engineering'] },
  { email: 'dan@acme.example', name: 'Dan (Frontend Engineering)', groups: ['frontend-engineering'] },
  { email: 'ada@acme.example', name: 'Ada (IT admin, Platform Engineering)', groups: ['it-admins', 'platform-engineering'] },
  { email: 'eve@acme.example', name: 'Eve (no team)', groups: ['contractors'] },
]);

export const DEV_CLIENT_ID = 'tollgate-dev';

export interface DevIssuer {
  /** e.g. http://127.0.0.1:41234 */
  issuer: string;
  /** The issuer entry to add to sso.issuers. */
  settings: SsoIssuerConfig;
  users: readonly DevUser[];
  /** Changes a user's groups (tests: group changes apply at the next login). */
  setGroups(email: string, groups: string[]): void;
  close(): Promise<void>;
}

export interface DevIssuerOptions {
  host?: string;
  port?: number;
  users?: readonly DevUser[];
  clientId?: string;
  name?: string;
  /** Lifetime of the device code, seconds. Default 600. */
  deviceCodeTtlS?: number;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head>` +
    `<body style="font-family:sans-serif;max-width:34em;margin:3em auto"><h1>${esc(title)}</h1>${body}` +
    '<p><small>Tollgate dev mode: demo issuer, no passwords. Never use it in production.</small></p></body></html>';
}

function send(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(html) });
  res.end(html);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let text = '';
  for await (const chunk of req as AsyncIterable<Buffer>) {
    text += chunk.toString('utf8');
    if (text.length > 16_384) throw new Error('form too large');
  }
  return new URLSearchParams(text);
}

type Payload = Record<string, unknown> & { uid?: string; userCode?: string; grantId?: string; consumed?: number };

/** oidc-provider's storage, in memory, scoped to one dev issuer (its built-in one warns at start). */
function memoryAdapter() {
  const store = new Map<string, { payload: Payload; expiresAt: number }>();
  const live = (key: string): Payload | undefined => {
    const e = store.get(key);
    if (e === undefined) return undefined;
    if (Date.now() >= e.expiresAt) {
      store.delete(key);
      return undefined;
    }
    return e.payload;
  };
  return class DevAdapter {
    readonly name: string;
    constructor(name: string) {
      this.name = name;
    }
    private key(id: string) {
      return `${this.name}:${id}`;
    }
    async upsert(id: string, payload: Payload, expiresIn: number) {
      store.set(this.key(id), { payload, expiresAt: Date.now() + (expiresIn > 0 ? expiresIn * 1000 : 86_400_000) });
    }
    async find(id: string) {
      return live(this.key(id));
    }
    async findByUid(uid: string) {
      for (const [k, e] of store) if (k.startsWith(`${this.name}:`) && e.payload.uid === uid) return live(k);
      return undefined;
    }
    async findByUserCode(userCode: string) {
      for (const [k, e] of store) if (k.startsWith(`${this.name}:`) && e.payload.userCode === userCode) return live(k);
      return undefined;
    }
    async consume(id: string) {
      const p = live(this.key(id));
      if (p) p.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      store.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string) {
      for (const [k, e] of store) if (e.payload.grantId === grantId) store.delete(k);
    }
  };
}

export async function startDevIssuer(opts: DevIssuerOptions = {}): Promise<DevIssuer> {
  const host = opts.host ?? '127.0.0.1';
  if (!LOOPBACK.test(host)) {
    throw new TollgateError('TOLLGATE_ERR_STARTUP_UNSAFE', `the dev issuer refuses to listen on ${host}; it has no passwords and must stay on loopback`);
  }
  // Loaded here, not at the top: oidc-provider and its dependencies are about 200 modules, and every
  // process that imports the gateway (each CLI verb, each test file) would load them at start.
  const { default: OidcProvider } = await import('oidc-provider');
  const clientId = opts.clientId ?? DEV_CLIENT_ID;
  const users = new Map((opts.users ?? DEMO_USERS).map((u) => [u.email, { ...u, groups: [...u.groups] }]));
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: opts.port ?? 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  const issuer = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: `dev-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
  const scopes = ['openid', 'email', 'profile', 'groups'];

  const provider = new OidcProvider(issuer, {
    clients: [{
      client_id: clientId,
      client_name: 'Tollgate (dev)',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
      // native + loopback: any port matches (RFC 8252 §7.3)
      redirect_uris: ['http://127.0.0.1/callback', 'http://127.0.0.1/auth/callback', 'http://localhost/auth/callback'],
    }],
    adapter: memoryAdapter(),
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes,
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    conformIdTokenClaims: false,
    pkce: { required: () => true, methods: ['S256'] },
    ttl: { AccessToken: 600, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600, DeviceCode: opts.deviceCodeTtlS ?? 600 },
    features: {
      devInteractions: { enabled: false },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: async (ctx: { body: unknown }, form: string, _out: unknown, err: unknown) => {
          ctx.body = page('Sign in a device', `${err ? '<p>That code is not valid. Try again.</p>' : '<p>Enter the code shown by <code>tollgate login --device</code>.</p>'}${form}<button type="submit" form="op.deviceInputForm">Continue</button>`);
        },
        userCodeConfirmSource: async (ctx: { body: unknown }, form: string, _client: unknown, _info: unknown, userCode: string) => {
          ctx.body = page('Confirm the device', `<p>Does your terminal show <code>${esc(userCode)}</code>?</p>${form}<button type="submit" form="op.deviceConfirmForm">Continue</button>`);
        },
        successSource: async (ctx: { body: unknown }) => {
          ctx.body = page('Signed in', '<p>Return to your terminal.</p>');
        },
      },
      revocation: { enabled: false },
    },
    renderError: async (ctx: { type: string; body: unknown }, out: Record<string, unknown>) => {
      ctx.type = 'html';
      ctx.body = page('Sign-in error', `<pre>${esc(JSON.stringify(out, null, 2))}</pre>`);
    },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    findAccount: async (_ctx: unknown, sub: string) => {
      const u = users.get(sub);
      if (!u) return undefined;
      return {
        accountId: sub,
        claims: async () => ({ sub, email: u.email, email_verified: true, name: u.name, groups: [...u.groups] }),
      };
    },
  } as unknown as ConstructorParameters<typeof Provider>[1]);
  const callback = provider.callback();

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', issuer);
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec(url.pathname);
    if (!m) {
      callback(req, res);
      return;
    }
    void (async () => {
      try {
        const details = await provider.interactionDetails(req, res);
        if (m[1] !== details.uid) throw new Error('interaction mismatch');
        if (details.prompt.name === 'consent') {
          // First-party dev client: every requested scope is granted without asking.
          const accountId = details.session?.accountId;
          const clientId = details.params['client_id'];
          if (typeof accountId !== 'string' || typeof clientId !== 'string') throw new Error('consent without a signed-in user');
          const grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
          const g = grant ?? new provider.Grant({ accountId, clientId });
          g.addOIDCScope(typeof details.params['scope'] === 'string' ? details.params['scope'] : 'openid');
          const grantId = await g.save();
          await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
          return;
        }
        if (req.method === 'GET' && !m[2]) {
          const buttons = [...users.values()].map((u) =>
            `<p><button type="submit" name="email" value="${esc(u.email)}">${esc(u.name)} — ${esc(u.email)}</button> <small>groups: ${esc(u.groups.join(', '))}</small></p>`).join('');
          send(res, 200, page('Sign in as a demo user', `<form method="post" action="/interaction/${esc(details.uid)}/login">${buttons}</form>`));
          return;
        }
        if (req.method === 'POST' && m[2]) {
          const email = (await readForm(req)).get('email') ?? '';
          if (!users.has(email)) {
            send(res, 400, page('Unknown user', '<p>Pick one of the demo users.</p>'));
            return;
          }
          await provider.interactionFinished(req, res, { login: { accountId: email } }, { mergeWithLastSubmission: false });
          return;
        }
        send(res, 405, page('Method not allowed', ''));
      } catch (err) {
        send(res, 400, page('Sign-in error', `<p>${esc(err instanceof Error ? err.message : String(err))}</p>`));
      }
    })();
  });

  return {
    issuer,
    users: [...users.values()],
    settings: { name: opts.name ?? 'dev', issuer, clientId, preset: 'generic', groupMap: {}, scopes },
    setGroups(email, groups) {
      const u = users.get(email);
      if (!u) throw new Error(`no demo user ${email}`);
      u.groups = [...groups];
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
