// Owns: mapping a failure of the upstream leg (socket, TLS, undici) to a reason code and a
// message that names the upstream and the cause — never leaking request data.
import { RequestRefusal, type ReasonCode } from '../errors.ts';

const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED', 'CERT_REVOKED', 'CERT_SIGNATURE_FAILURE',
  'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_UNSUPPORTED_PROTOCOL', 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 'ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR', 'EPROTO', 'HOSTNAME_MISMATCH',
]);

export function upstreamRefusal(err: unknown, upstream: string): RequestRefusal {
  if (err instanceof RequestRefusal) return err;
  const e = err as { code?: string; message?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  let reason: ReasonCode;
  let cause: string;
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT' || code === 'TOLLGATE_CONNECT_TIMEOUT') {
    reason = 'upstream_timeout'; cause = 'connect timeout';
  } else if (code === 'TOLLGATE_UPSTREAM_PROXY_TIMEOUT') {
    reason = 'upstream_timeout'; cause = e.message ?? 'upstream proxy timeout';
  } else if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    reason = 'upstream_timeout'; cause = 'no response headers in time';
  } else if (code === 'UND_ERR_BODY_TIMEOUT') {
    reason = 'upstream_timeout'; cause = 'response body stalled';
  } else if (TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) {
    reason = 'upstream_tls_error'; cause = `TLS: ${code}`;
  } else if (code === 'ECONNREFUSED') {
    reason = 'upstream_unavailable'; cause = 'connection refused';
  } else if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') {
    reason = 'upstream_unavailable'; cause = 'connection reset by the upstream';
  } else if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    reason = 'upstream_unavailable'; cause = 'host unreachable';
  } else if (code === 'HPE_INVALID_CONSTANT' || code.startsWith('HPE_') || code === 'UND_ERR_INFO') {
    reason = 'upstream_protocol_error'; cause = 'invalid HTTP response';
  } else if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
    reason = 'malformed_request'; cause = 'request body length does not match Content-Length';
  } else if (code === 'TOLLGATE_UPSTREAM_PROXY') {
    reason = 'upstream_unavailable'; cause = e.message ?? 'upstream proxy refused the tunnel';
  } else {
    reason = 'upstream_unavailable'; cause = code || 'connection failed';
  }
  return new RequestRefusal(reason, `Upstream ${upstream} failed: ${cause}.`, { detail: e.message, cause: err });
}
