// Owns: the claim quirks of the identity providers Tollgate documents, and verified ID token
// claims → the identity Tollgate uses ({ subject, email, groups }). PURE.
//
// | preset    | scopes asked                     | e-mail from                          | groups from                        |
// | generic   | openid email profile             | email                                | `groups` (or groups_claim)         |
// | okta      | openid email profile groups      | email                                | `groups` (a custom claim you add)  |
// | entra     | openid email profile             | preferred_username, upn, then email  | `groups`: object ids → group_map   |
// | jumpcloud | openid email profile             | email                                | `groups` (the app's group attribute) |
//
// Users are keyed on (iss, sub); the e-mail is the name shown and audited. Teams come only from
// the groups of this very token, never from an e-mail match (nOAuth). `email_verified: false`
// is refused.
import type { IssuerPreset } from '../../config/gateway-config.ts';
import { OidcError } from './oidc-error.ts';

export interface PresetDefaults {
  scopes: readonly string[];
  groupsClaim: string;
  emailClaims: readonly string[];
}

export const PRESETS: Readonly<Record<IssuerPreset, PresetDefaults>> = Object.freeze({
  generic: { scopes: ['openid', 'email', 'profile'], groupsClaim: 'groups', emailClaims: ['email'] },
  okta: { scopes: ['openid', 'email', 'profile', 'groups'], groupsClaim: 'groups', emailClaims: ['email'] },
  entra: { scopes: ['openid', 'email', 'profile'], groupsClaim: 'groups', emailClaims: ['preferred_username', 'upn', 'email'] },
  jumpcloud: { scopes: ['openid', 'email', 'profile'], groupsClaim: 'groups', emailClaims: ['email'] },
});

export interface IssuerClaimSettings {
  name: string;
  preset: IssuerPreset;
  groupsClaim?: string | undefined;
  groupMap?: Readonly<Record<string, string>>;
  scopes?: readonly string[] | undefined;
}

export interface SsoIdentity {
  issuer: string;
  subject: string;
  email: string;
  groups: string[];
}

/** Scopes to request: the configured ones (or the preset's), always with openid first. */
export function scopesFor(settings: IssuerClaimSettings): string[] {
  const scopes = settings.scopes ?? PRESETS[settings.preset].scopes;
  return ['openid', ...scopes.filter((s) => s !== 'openid')];
}

const EMAIL = /^[^\s@\p{Cc}]{1,200}@[^\s@\p{Cc}]{1,119}$/u;
const MAX_GROUPS = 1000;

function groupValues(raw: unknown): string[] | undefined {
  if (raw === undefined || raw === null) return [];
  if (typeof raw === 'string') return [raw];
  if (Array.isArray(raw) && raw.every((g) => typeof g === 'string')) return raw as string[];
  return undefined;
}

/** Verified claims → identity. Throws OidcError identity_incomplete with a message that says what to fix. */
export function identityFromClaims(claims: Readonly<Record<string, unknown>>, settings: IssuerClaimSettings): SsoIdentity {
  const preset = PRESETS[settings.preset];
  const incomplete = (message: string, detail?: string) => new OidcError('identity_incomplete', message, detail === undefined ? {} : { detail });
  if (claims['email_verified'] === false || claims['email_verified'] === 'false') {
    throw incomplete(`${settings.name} says your e-mail address is not verified; verify it with your identity provider and sign in again.`);
  }
  let email: string | undefined;
  for (const c of preset.emailClaims) {
    const v = claims[c];
    if (typeof v === 'string' && EMAIL.test(v)) {
      email = v.toLowerCase();
      break;
    }
  }
  if (email === undefined) {
    throw incomplete(`The sign-in from ${settings.name} carries no e-mail address (claims ${preset.emailClaims.join(', ')}); ask your administrator to release the email scope to Tollgate.`);
  }
  const claimName = settings.groupsClaim ?? preset.groupsClaim;
  const names = claims['_claim_names'];
  if (settings.preset === 'entra' && names && typeof names === 'object' && claimName in (names as object) && claims[claimName] === undefined) {
    throw incomplete(
      'Entra ID left the groups out of the sign-in because you are in too many groups (groups overage); ask your administrator to emit only "Groups assigned to the application".',
      '_claim_names.groups present',
    );
  }
  const raw = groupValues(claims[claimName]);
  if (raw === undefined) throw incomplete(`The ${claimName} claim from ${settings.name} is not a list of group names.`, `claim ${claimName}`);
  const map = settings.groupMap ?? {};
  const groups = [...new Set(raw.slice(0, MAX_GROUPS).map((g) => map[g] ?? g).filter((g) => g.length > 0 && g.length <= 256))];
  return { issuer: String(claims['iss']), subject: String(claims['sub']), email, groups };
}
