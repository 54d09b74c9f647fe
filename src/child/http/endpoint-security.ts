/**
 * What lets an endpoint trust a job POST: Standard Webhooks signatures (webhook-id, webhook-timestamp,
 * webhook-signature), and the TLS options of the pool's connections, with the words that turn a TLS
 * error code into the setting that fixes it.
 *
 * Signing is an HMAC-SHA256 per key over `<webhook-id>.<webhook-timestamp>.<body>`, fed the exact
 * bytes the HTTP client writes (the JSON string as UTF-8, the multipart buffers in order) without joining them.
 */
import { createHmac } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';
import type { PoolTls } from '../../config/types.js';

export const WEBHOOK_ID_HEADER = 'webhook-id';
export const WEBHOOK_TIMESTAMP_HEADER = 'webhook-timestamp';
export const WEBHOOK_SIGNATURE_HEADER = 'webhook-signature';

const PERCENT = 0x25;
const PERIOD = 0x2e;
const HEX = '0123456789ABCDEF';

/**
 * Bytes a webhook-id keeps as they are: printable ASCII without space (a header value is trimmed), `%`
 * (the escape) and `.` (the spec forbids it in an id: it delimits the signed content's fields).
 */
function keepsByte(byte: number): boolean {
  return byte > 0x20 && byte < 0x7f && byte !== PERCENT && byte !== PERIOD;
}

/**
 * The webhook-id of a job: its Gearman unique, else its handle, so every redelivery of the job (a retry,
 * a hand-back to gearmand, a re-queue) carries the same id. Bytes a header cannot carry or the signature
 * scheme forbids become %XX (`order.42` → `order%2E42`), so the id is the same bytes an endpoint
 * reads from the header and signs with.
 */
export function webhookId(unique: Buffer, handle: Buffer): string {
  const source = unique.length > 0 ? unique : handle;
  let plain = true;
  for (const byte of source) {
    if (!keepsByte(byte)) {
      plain = false;
      break;
    }
  }
  if (plain) return source.toString('latin1');
  let id = '';
  for (const byte of source) {
    id += keepsByte(byte) ? String.fromCharCode(byte) : `%${HEX[byte >> 4]}${HEX[byte & 0xf]}`;
  }
  return id;
}

/** The body exactly as the HTTP client sends it: a string is written as UTF-8, buffers as they are, in order. */
export type SignedBody = string | Buffer | readonly Buffer[];

export class RequestSigner {
  readonly #keys: Buffer[];
  #second = -1;
  #secondText = '';

  /** `keys`: base64 of each secret's bytes (the part after `whsec_`), as PoolConfig.signingKeys holds them. */
  constructor(keys: readonly string[]) {
    this.#keys = keys.map((key) => Buffer.from(key, 'base64'));
  }

  /**
   * The three Standard Webhooks headers as a flat [name, value, …] list: `v1,<base64>` per key in
   * webhook-signature, separated by spaces (rotation: the endpoint accepts any one that verifies).
   */
  headers(id: string, body: SignedBody, nowMs: number = Date.now()): string[] {
    const second = Math.floor(nowMs / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#secondText = String(second);
    }
    return [WEBHOOK_ID_HEADER, id, WEBHOOK_TIMESTAMP_HEADER, this.#secondText, WEBHOOK_SIGNATURE_HEADER, this.sign(id, this.#secondText, body)];
  }

  /** The webhook-signature value for one id, timestamp and body. */
  sign(id: string, timestamp: string, body: SignedBody): string {
    let signature = '';
    // One update for the id and timestamp: each update is a call into OpenSSL (~4 µs per key in all).
    const prefix = `${id}.${timestamp}.`;
    for (const key of this.#keys) {
      const hmac = createHmac('sha256', key).update(prefix, 'latin1');
      if (typeof body === 'string') hmac.update(body, 'utf8');
      else if (Buffer.isBuffer(body)) hmac.update(body);
      else for (const part of body) hmac.update(part);
      signature += `${signature === '' ? '' : ' '}v1,${hmac.digest('base64')}`;
    }
    return signature;
  }
}

/** The HTTP client's TLS connect options for a pool's `tls` (certificates are verified always). */
export function tlsConnectOptions(tls: PoolTls): ConnectionOptions {
  return {
    rejectUnauthorized: true,
    ...(tls.ca === null ? {} : { ca: tls.ca }),
    ...(tls.cert === null ? {} : { cert: tls.cert }),
    ...(tls.key === null ? {} : { key: tls.key }),
    ...(tls.serverName === null ? {} : { servername: tls.serverName }),
  };
}

/** OpenSSL's verification results for a chain that does not lead to a trusted CA. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);
const OUT_OF_DATE = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CRL_HAS_EXPIRED']);
/** TLS alerts an endpoint sends when it wants a client certificate, or does not trust the one it got. */
const CLIENT_CERTIFICATE_REFUSED = new Set([
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
]);

/**
 * Stands for the HTTP client's "other side closed" on an https connection that had not received a byte: the
 * caller passes it as `code` for that case only.
 */
export const CLOSED_AFTER_HANDSHAKE = 'closed-after-handshake';

/**
 * Stands for ECONNRESET on an https connection that never completed its handshake (the endpoint reset
 * or closed it): the caller passes it as `code` for that case only.
 */
export const RESET_IN_HANDSHAKE = 'reset-in-handshake';

/** The endpoint's alert when it shares no TLS version with us (alert 70, protocol_version). */
const PROTOCOL_VERSION_REFUSED = 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION';

/**
 * What lets this Node reach a TLS 1.0 or 1.1 endpoint: the lower minimum version, and OpenSSL 3's
 * security level 0, without which it still refuses those versions (their handshake signs with SHA-1).
 * Checked against a TLS 1.0-only endpoint in test/child/http/endpoint-faults.test.ts.
 */
export const LEGACY_TLS_NODE_OPTIONS = '--tls-min-v1.0 --tls-cipher-list=DEFAULT@SECLEVEL=0';

/** The TLS versions this process offers: Node's minimum and maximum (NODE_OPTIONS may have changed them). */
function offeredVersions(): string {
  // Asked for here, not imported: node:tls costs a child of a plain-http pool 3 MiB (a TLS error means
  // it is loaded already).
  const { DEFAULT_MIN_VERSION, DEFAULT_MAX_VERSION } = process.getBuiltinModule('node:tls');
  return `${DEFAULT_MIN_VERSION} to ${DEFAULT_MAX_VERSION}, Node's minimum and maximum`;
}

/** What to do about an endpoint that speaks only old TLS, and at what cost. */
const LEGACY_TLS_REMEDY =
  `upgrade its TLS, or if you must reach it as it is, start driveshaft with NODE_OPTIONS="${LEGACY_TLS_NODE_OPTIONS}" ` +
  '(that weakens TLS for every https endpoint of the daemon)';

/**
 * What to change when a request failed with TLS error `code`, or null for other errors. `tls` is the
 * pool's setting, so the advice names what is (or is not) configured.
 */
export function tlsAdvice(code: string, tls: PoolTls | null): string | null {
  if (UNTRUSTED.has(code)) {
    return tls?.caFile != null
      ? `the endpoint's certificate is not signed by a CA of tls.ca_file (${tls.caFile})`
      : "the endpoint's certificate is not signed by a CA driveshaft trusts: give the pool's \"tls\": {\"ca_file\": …} the CA that signed it (or set NODE_EXTRA_CA_CERTS)";
  }
  if (OUT_OF_DATE.has(code)) return "the endpoint's certificate is outside its validity period (check its dates and this host's clock)";
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return tls?.serverName != null
      ? `the endpoint's certificate is not valid for tls.server_name ${JSON.stringify(tls.serverName)}`
      : "the endpoint's certificate does not name the host of job_processing_uri: use a name it holds in the URI, or set the pool's tls.server_name";
  }
  if (CLIENT_CERTIFICATE_REFUSED.has(code)) {
    return tls?.certFile != null
      ? `the endpoint refused the client certificate of tls.cert_file (${tls.certFile})`
      : "the endpoint wants a client certificate (mutual TLS): set the pool's tls.cert_file and tls.key_file";
  }
  if (code === CLOSED_AFTER_HANDSHAKE) {
    // The HTTP client reports a TLS 1.3 refusal of the client certificate (the server's alert comes after the
    // handshake, once the request is written) as a connection closed before any byte came back; other
    // causes look the same from here, hence "if".
    const lead = 'the endpoint closed a new connection without answering; if it checks client certificates';
    return tls?.certFile != null ? `${lead}, it refused the one of tls.cert_file (${tls.certFile})` : `${lead} (mutual TLS), set the pool's tls.cert_file and tls.key_file`;
  }
  if (code === PROTOCOL_VERSION_REFUSED) {
    return `the endpoint supports none of the TLS versions driveshaft offers (${offeredVersions()}); if it speaks only TLS 1.0 or 1.1, ${LEGACY_TLS_REMEDY}`;
  }
  if (code === RESET_IN_HANDSHAKE) {
    // Some TLS stacks drop a ClientHello they cannot serve instead of sending the protocol_version
    // alert; other causes (a firewall, a server that is not TLS at all) look the same from here, hence "if".
    return `the endpoint dropped the connection during the TLS handshake; if it speaks only TLS 1.0 or 1.1 (driveshaft offers ${offeredVersions()}), ${LEGACY_TLS_REMEDY}`;
  }
  return null;
}
