// Owns: the random values of one authorization request — PKCE verifier and S256 challenge
// (RFC 7636), state and nonce. The random source is an argument for tests.
import { createHash, randomBytes } from 'node:crypto';

export interface AuthorizationSecrets {
  /** 43 characters of base64url (32 random bytes), the RFC 7636 minimum length and entropy. */
  codeVerifier: string;
  codeChallenge: string;
  state: string;
}

export function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

export function randomToken(bytes = 32, random: (n: number) => Buffer = randomBytes): string {
  return random(bytes).toString('base64url');
}

export function createAuthorizationSecrets(random: (n: number) => Buffer = randomBytes): AuthorizationSecrets {
  const codeVerifier = randomToken(32, random);
  return { codeVerifier, codeChallenge: s256(codeVerifier), state: randomToken(24, random) };
}
