// Owns: what a gateway token looks like on the wire. PURE.

export const TOKEN_PREFIX = 'tg_';
/** `tg_` + base64url (no padding) of 32 random bytes = 3 + 43 characters, 256 bits of entropy. */
export const TOKEN_PATTERN = /^tg_[A-Za-z0-9_-]{43}$/;
export const TOKEN_BYTES = 32;

export function looksLikeToken(text: string): boolean {
  return TOKEN_PATTERN.test(text);
}
