// Test-only: a scripted "browser" for OIDC sign-in pages — a cookie jar per origin (paths
// ignored), manual redirect following, and form submission parsed from the HTML. It drives the
// dev issuer's pick-a-user page and oidc-provider's device pages, no real browser needed.
import { fetchDiscovery } from '../../src/identity/oidc/discovery.ts';
import { runCodeFlow } from '../../src/identity/oidc/public-client.ts';

export interface Hop {
  url: string;
  method: string;
  status: number;
  headers: Headers;
  body: string;
}

const decode = (s: string) => s.replace(/&#(\d+);/g, (_m, n: string) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>');

export interface ParsedForm {
  action: string;
  fields: Record<string, string>;
  buttons: Array<{ name: string; value: string }>;
}

export function parseForms(html: string, base: string): ParsedForm[] {
  const forms: ParsedForm[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = m[1] ?? '';
    const action = decode(/action="([^"]*)"/i.exec(attrs)?.[1] ?? '');
    const fields: Record<string, string> = {};
    for (const i of (m[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
      const a = i[1] ?? '';
      const name = /name="([^"]*)"/i.exec(a)?.[1];
      if (name !== undefined) fields[name] = decode(/value="([^"]*)"/i.exec(a)?.[1] ?? '');
    }
    const buttons = [...(m[2] ?? '').matchAll(/<button\b([^>]*)>/gi)].map((b) => ({
      name: /name="([^"]*)"/i.exec(b[1] ?? '')?.[1] ?? '', value: decode(/value="([^"]*)"/i.exec(b[1] ?? '')?.[1] ?? ''),
    })).filter((b) => b.name !== '');
    forms.push({ action: new URL(action || base, base).href, fields, buttons });
  }
  return forms;
}

export class ScriptedBrowser {
  readonly jar = new Map<string, Map<string, string>>();
  readonly hops: Hop[] = [];

  cookies(origin: string): Map<string, string> {
    let j = this.jar.get(origin);
    if (!j) this.jar.set(origin, (j = new Map()));
    return j;
  }

  private store(url: string, headers: Headers): void {
    const jar = this.cookies(new URL(url).origin);
    for (const line of headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      if (/max-age=0\b/i.test(line) || /expires=Thu, 01 Jan 1970/i.test(line) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  }

  async request(url: string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Hop> {
    const jar = this.cookies(new URL(url).origin);
    const headers: Record<string, string> = { ...init.headers };
    if (jar.size) headers['cookie'] = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (init.form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, redirect: 'manual', ...(init.form ? { body: new URLSearchParams(init.form).toString() } : {}) });
    const body = await res.text();
    this.store(url, res.headers);
    const hop: Hop = { url, method: init.method ?? (init.form ? 'POST' : 'GET'), status: res.status, headers: res.headers, body };
    this.hops.push(hop);
    return hop;
  }

  /** Follows redirects from a request; stops before fetching a URL for which stop() is true. */
  async follow(url: string, init: { form?: Record<string, string>; headers?: Record<string, string> } = {}, stop: (url: string) => boolean = () => false): Promise<Hop & { stoppedAt?: string }> {
    let hop = await this.request(url, init);
    for (let i = 0; i < 20 && hop.status >= 300 && hop.status < 400; i++) {
      const next = new URL(hop.headers.get('location') ?? '', hop.url).href;
      if (stop(next)) return { ...hop, stoppedAt: next };
      hop = await this.request(next);
    }
    return hop;
  }

  /**
   * Signs in as `email` starting from an authorization (or device verification) URL: submits
   * auto-post and device-confirm forms, picks the user on the dev issuer's page, and returns the
   * last response (or stops before a URL matching stop()).
   */
  async signIn(startUrl: string, email: string, stop: (url: string) => boolean = () => false): Promise<Hop & { stoppedAt?: string }> {
    let hop = await this.follow(startUrl, {}, stop);
    for (let i = 0; i < 8 && hop.stoppedAt === undefined && hop.status === 200; i++) {
      const forms = parseForms(hop.body, hop.url);
      const pick = forms.find((f) => f.buttons.some((b) => b.name === 'email' && b.value === email));
      if (pick) {
        hop = await this.follow(pick.action, { form: { email } }, stop);
        continue;
      }
      const auto = forms.find((f) => Object.keys(f.fields).length > 0 && !('user_code' in f.fields && f.fields['user_code'] === ''));
      if (!auto) break;
      hop = await this.follow(auto.action, { form: auto.fields }, stop);
    }
    return hop;
  }
}

/**
 * An ID token for `email` from the OpenID provider at `issuerUrl` (a dev issuer: client
 * tollgate-dev), through a real code + PKCE flow with `nonce` — which the gateway need not have minted.
 */
export async function idTokenFrom(issuerUrl: string, email: string, nonce: string): Promise<string> {
  const metadata = await fetchDiscovery(issuerUrl);
  const browser = new ScriptedBrowser();
  return runCodeFlow({
    metadata, clientId: 'tollgate-dev', scopes: ['openid', 'email', 'groups'], nonce, print: () => undefined,
    openUrl: async (url) => {
      void browser.signIn(url, email);
      return true;
    },
  });
}
