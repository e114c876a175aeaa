// Owns: the one refusal value the pure classifiers return for unparseable input
// (reason `malformed_request`, with a message safe to show the client).
import type { ReasonCode } from '../errors.ts';

export interface Malformed {
  readonly ok: false;
  readonly reason: Extract<ReasonCode, 'malformed_request'>;
  readonly message: string;
}

export function malformed(message: string): Malformed {
  return { ok: false, reason: 'malformed_request', message };
}
