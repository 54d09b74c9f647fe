/**
 * A pool's security keys in the jobs config: `signing_secrets` (Standard Webhooks request signing),
 * `bearer_token_file` and the `tls` object. Secrets are never written in the jobs config itself: it is
 * named in logs and often world-readable; they are read here, by the master, from files or environment
 * variables, and travel to the pool's child over IPC with the rest of the pool's settings, so a child
 * running as --user needs no access to them.
 *
 * No problem line and no warning ever contains a secret: lines name the file, the line number or the
 * variable, and what was expected.
 */
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { childPath } from './json-source.js';
import { Problems, checkKeys, isPlainObject, preview } from './problems.js';
import { isCredentialHeaderName } from './redact.js';
import { SecretKind } from './types.js';
import type { PoolConfig, PoolTls, SecretSource } from './types.js';

/** The per-pool keys this module reads, for the pool's list of allowed keys. */
export const POOL_SECURITY_KEYS = ['signing_secrets', 'bearer_token_file', 'tls'] as const;
/** Where `signing_secrets` come from: exactly one of these. */
export const SIGNING_SOURCE_KEYS = { required: [], optional: ['file', 'env'] } as const;
/** The keys of a `tls` object, in the order the documentation lists them. */
export const TLS_KEYS = { required: [], optional: ['ca_file', 'cert_file', 'key_file', 'server_name'] } as const;

export type PoolSecuritySettings = Pick<PoolConfig, 'signingKeys' | 'bearerToken' | 'tls' | 'secretSources'>;

/** The Standard Webhooks secret size: at least 24 random bytes, at most 64 (512 bits). */
export const MIN_SECRET_BYTES = 24;
export const MAX_SECRET_BYTES = 64;
/**
 * Each key costs one HMAC over every request body; rotation needs two (the new one and the one being
 * retired), and anything past a handful is a file that was not meant for this.
 */
export const MAX_SIGNING_SECRETS = 8;

const SECRET_PREFIX = 'whsec_';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CONTROL_CHARACTERS = /[\x00-\x1f\x7f]/;
/** RFC 6750 b64token, the characters a bearer token may have: one line, no spaces. */
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

const READ_REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'a parent of the path is not a directory',
  ELOOP: 'too many symbolic links',
};

function readReason(error: unknown): string {
  return READ_REASONS[(error as NodeJS.ErrnoException).code ?? ''] ?? (error as Error).message;
}

/** What is being read and where problems about it go. */
interface Reading {
  configDir: string;
  problems: Problems;
  warnings: string[];
  sources: SecretSource[];
}

/** A file path in the config, resolved against the config's folder; null (and a problem) when it is no path. */
function resolvePath(value: unknown, at: string, reading: Reading): string | null {
  if (typeof value !== 'string' || value === '' || CONTROL_CHARACTERS.test(value)) {
    reading.problems.expected(at, 'a file path', value);
    return null;
  }
  return path.resolve(reading.configDir, value);
}

/**
 * The text of `file`, or null after a problem line. Only regular files: a FIFO or a device would hang
 * the master or feed it endless bytes. `secret` files are also looked at for their mode.
 */
function readFile(file: string, at: string, reading: Reading, secret: boolean): string | null {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (error) {
    reading.problems.add(at, `cannot read ${file}: ${readReason(error)}`);
    return null;
  }
  if (!stat.isFile()) {
    reading.problems.add(at, `cannot read ${file}: not a regular file`);
    return null;
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    reading.problems.add(at, `cannot read ${file}: ${readReason(error)}`);
    return null;
  }
  if (secret) {
    const warning = permissionWarning(file, stat.mode, at);
    if (warning !== null) reading.warnings.push(warning);
  }
  return text;
}

/** Octal mode as `ls -l` users know it from chmod: `0644`. */
function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

/**
 * A warning when users other than the owner and the group can read `file`. Group read is left alone:
 * `root:driveshaft 0640` is how a file is shared with the --user the daemon drops to.
 */
export function permissionWarning(file: string, mode: number, at: string): string | null {
  if ((mode & 0o004) === 0) return null;
  return `${file} (${at}) is readable by every user (mode ${octal(mode)}); it holds a secret: chmod o-rwx ${file}`;
}

// ---------------------------------------------------------------------------------------------------
// signing_secrets

/** The key bytes of one `whsec_<base64>` secret as normalised base64, or what is wrong with it. */
export function decodeSigningSecret(text: string): { key: string } | { problem: string } {
  const expected = `a secret of the form whsec_<base64 of ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} random bytes>`;
  if (!text.startsWith(SECRET_PREFIX)) return { problem: `expected ${expected} (it does not start with "${SECRET_PREFIX}")` };
  const encoded = text.slice(SECRET_PREFIX.length);
  const bytes = Buffer.from(encoded, 'base64');
  // Node's decoder skips what is not base64; a round trip tells a real secret from a mangled one.
  if (!BASE64.test(encoded) || bytes.toString('base64').replace(/=+$/, '') !== encoded.replace(/=+$/, '')) {
    return { problem: `expected ${expected} (what follows "${SECRET_PREFIX}" is not base64)` };
  }
  if (bytes.length < MIN_SECRET_BYTES || bytes.length > MAX_SECRET_BYTES) {
    return { problem: `expected ${expected} (it decodes to ${bytes.length} bytes)` };
  }
  return { key: bytes.toString('base64') };
}

/** Secrets of a secrets file: one a line; blank lines and `#` comments are skipped. */
function secretsOfFile(text: string): Array<{ secret: string; where: string }> {
  const entries: Array<{ secret: string; where: string }> = [];
  text.split('\n').forEach((line, index) => {
    const secret = line.trim();
    if (secret !== '' && !secret.startsWith('#')) entries.push({ secret, where: `line ${index + 1}` });
  });
  return entries;
}

/** Secrets of an environment variable: separated by spaces, like the signatures of webhook-signature. */
function secretsOfVariable(text: string): Array<{ secret: string; where: string }> {
  return text
    .split(/\s+/)
    .filter((secret) => secret !== '')
    .map((secret, index) => ({ secret, where: `secret ${index + 1}` }));
}

function readSigningSecrets(value: unknown, at: string, reading: Reading, env: NodeJS.ProcessEnv): string[] {
  const { problems } = reading;
  if (!isPlainObject(value)) {
    // Never preview the value: it may be the very secret that must not be in this file.
    problems.add(at, 'expected {"file": "<path>"} or {"env": "<VARIABLE>"}; secrets are never written in the jobs config itself');
    return [];
  }
  checkKeys(value, at, SIGNING_SOURCE_KEYS, problems);
  const hasFile = Object.hasOwn(value, 'file');
  const hasEnv = Object.hasOwn(value, 'env');
  if (hasFile === hasEnv) {
    problems.add(at, 'expected exactly one of "file" (a file of whsec_ secrets, one a line) and "env" (a variable holding them, separated by spaces)');
    return [];
  }
  let entries: Array<{ secret: string; where: string }>;
  let origin: string;
  let originAt: string;
  if (hasFile) {
    originAt = childPath(at, 'file');
    const file = resolvePath(value.file, originAt, reading);
    if (file === null) return [];
    const text = readFile(file, originAt, reading, true);
    if (text === null) return [];
    reading.sources.push({ key: 'signing_secrets', kind: SecretKind.FILE, name: file });
    entries = secretsOfFile(text);
    origin = file;
  } else {
    originAt = childPath(at, 'env');
    const name = value.env;
    if (typeof name !== 'string' || !ENV_NAME.test(name)) {
      problems.expected(originAt, 'an environment variable name (letters, digits and _)', name);
      return [];
    }
    const text = Object.hasOwn(env, name) ? env[name] : undefined;
    if (text === undefined) {
      problems.add(originAt, `environment variable ${name} is not set`);
      return [];
    }
    reading.sources.push({ key: 'signing_secrets', kind: SecretKind.ENV, name });
    entries = secretsOfVariable(text);
    origin = `environment variable ${name}`;
  }
  if (entries.length === 0) {
    problems.add(originAt, `${origin} holds no secret; expected at least one whsec_ secret`);
    return [];
  }
  if (entries.length > MAX_SIGNING_SECRETS) {
    problems.add(originAt, `${origin} holds ${entries.length} secrets; at most ${MAX_SIGNING_SECRETS} (each one is an HMAC over every request; rotation needs two)`);
    return [];
  }
  const keys: string[] = [];
  for (const { secret, where } of entries) {
    const decoded = decodeSigningSecret(secret);
    if ('problem' in decoded) problems.add(originAt, `${where} of ${origin}: ${decoded.problem}`);
    else if (!keys.includes(decoded.key)) keys.push(decoded.key);
  }
  return keys;
}

// ---------------------------------------------------------------------------------------------------
// bearer_token_file

function readBearerToken(value: unknown, at: string, reading: Reading): string | null {
  const file = resolvePath(value, at, reading);
  if (file === null) return null;
  const text = readFile(file, at, reading, true);
  if (text === null) return null;
  reading.sources.push({ key: 'bearer_token_file', kind: SecretKind.FILE, name: file });
  const token = text.trim();
  if (!BEARER_TOKEN.test(token)) {
    const what = token === '' ? 'it is empty' : 'it has spaces, line breaks or other characters a bearer token cannot have';
    reading.problems.add(at, `${file}: expected one bearer token (letters, digits and -._~+/, then optional =) on one line; ${what}`);
    return null;
  }
  return token;
}

// ---------------------------------------------------------------------------------------------------
// tls

/** OpenSSL's and Node's error codes, worded for the operator. */
function pemReason(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (code === 'ERR_OSSL_PEM_NO_START_LINE') return 'it is not PEM (no "-----BEGIN" line)';
  if (code === 'ERR_MISSING_PASSPHRASE') return 'the key is encrypted with a passphrase; store it decrypted (openssl pkey -in <file> -out <file>) with mode 0600';
  return (error as Error).message;
}

function readCertificates(file: string, at: string, reading: Reading): { pem: string; certificates: X509Certificate[] } | null {
  const text = readFile(file, at, reading, false);
  if (text === null) return null;
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    reading.problems.add(at, `${file}: expected PEM certificates ("-----BEGIN CERTIFICATE-----"), found none`);
    return null;
  }
  const certificates: X509Certificate[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      certificates.push(new X509Certificate(block));
    } catch (error) {
      reading.problems.add(at, `${file}: certificate ${index + 1} cannot be read: ${pemReason(error)}`);
      return null;
    }
  }
  return { pem: text, certificates };
}

/** Warnings for certificates outside their validity period: every handshake would fail on them. */
function validityWarnings(file: string, at: string, certificates: readonly X509Certificate[], reading: Reading, now: number): void {
  for (const certificate of certificates) {
    const notAfter = Date.parse(certificate.validTo);
    const notBefore = Date.parse(certificate.validFrom);
    if (notAfter < now) reading.warnings.push(`${file} (${at}): certificate "${certificate.subject.replace(/\n/g, ', ')}" expired on ${new Date(notAfter).toISOString()}`);
    else if (notBefore > now) reading.warnings.push(`${file} (${at}): certificate "${certificate.subject.replace(/\n/g, ', ')}" is not valid before ${new Date(notBefore).toISOString()}`);
  }
}

/** A DNS name for SNI: Node refuses an IP address there (RFC 6066), and the URI's host already covers that case. */
function serverNameProblem(value: unknown): string | null {
  if (typeof value !== 'string' || value === '' || value.length > 253) return 'a host name';
  if (net.isIP(value) !== 0) return 'a host name, not an IP address (SNI carries names only; put the address in job_processing_uri)';
  if (!/^[A-Za-z0-9_*](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$/.test(value)) return 'a host name (letters, digits, -, _ and dots)';
  return null;
}

function readTls(value: unknown, at: string, reading: Reading, now: number): PoolTls | null {
  const { problems } = reading;
  if (!isPlainObject(value)) {
    problems.expected(at, 'an object with "ca_file", "cert_file", "key_file" and/or "server_name"', value);
    return null;
  }
  checkKeys(value, at, TLS_KEYS, problems);
  const before = problems.lines.length;
  const key = (name: string): string => childPath(at, name);
  const has = (name: string): boolean => Object.hasOwn(value, name);
  const tls: PoolTls = { ca: null, caFile: null, cert: null, certFile: null, key: null, keyFile: null, serverName: null };
  if (has('ca_file')) {
    const file = resolvePath(value.ca_file, key('ca_file'), reading);
    const read = file === null ? null : readCertificates(file, key('ca_file'), reading);
    if (read !== null && file !== null) {
      tls.ca = read.pem;
      tls.caFile = file;
      validityWarnings(file, key('ca_file'), read.certificates, reading, now);
    }
  }
  if (has('cert_file') !== has('key_file')) {
    problems.add(key(has('cert_file') ? 'key_file' : 'cert_file'), 'missing; mutual TLS needs both cert_file (the client certificate) and key_file (its private key)');
  }
  let leaf: X509Certificate | null = null;
  if (has('cert_file')) {
    const file = resolvePath(value.cert_file, key('cert_file'), reading);
    const read = file === null ? null : readCertificates(file, key('cert_file'), reading);
    if (read !== null && file !== null) {
      tls.cert = read.pem;
      tls.certFile = file;
      leaf = read.certificates[0] ?? null;
      validityWarnings(file, key('cert_file'), read.certificates.slice(0, 1), reading, now);
    }
  }
  if (has('key_file')) {
    const keyAt = key('key_file');
    const file = resolvePath(value.key_file, keyAt, reading);
    const text = file === null ? null : readFile(file, keyAt, reading, true);
    if (text !== null && file !== null) {
      reading.sources.push({ key: 'tls.key_file', kind: SecretKind.FILE, name: file });
      try {
        const privateKey = createPrivateKey(text);
        tls.key = text;
        tls.keyFile = file;
        const publicDer = (k: ReturnType<typeof createPublicKey>): Buffer => k.export({ type: 'spki', format: 'der' });
        if (leaf !== null && !publicDer(createPublicKey(privateKey)).equals(publicDer(leaf.publicKey))) {
          problems.add(keyAt, `${file} is not the private key of the certificate in ${tls.certFile} (their public keys differ)`);
        }
      } catch (error) {
        problems.add(keyAt, `${file}: expected a PEM private key; ${pemReason(error)}`);
      }
    }
  }
  if (has('server_name')) {
    const problem = serverNameProblem(value.server_name);
    if (problem === null) tls.serverName = (value.server_name as string).toLowerCase();
    else problems.expected(key('server_name'), problem, value.server_name);
  }
  if (problems.lines.length > before) return null;
  const empty = tls.ca === null && tls.cert === null && tls.serverName === null;
  return empty ? null : tls;
}

// ---------------------------------------------------------------------------------------------------
// Entry points

export interface SecurityContext {
  configDir: string;
  problems: Problems;
  /** Collects the config's warnings (secret files others can read, certificates out of date). */
  warnings: string[];
  /** Where `{"env": …}` secrets are looked up. */
  env: NodeJS.ProcessEnv;
  /** Date.now() for certificate validity. */
  now: number;
}

/**
 * Reads a pool object's signing_secrets, bearer_token_file and tls keys. `at` is the pool's JSON path;
 * `https` says whether its job_processing_uri is https:// (null when the URI itself was invalid): a
 * `tls` object on an http:// pool would silently do nothing, so it is refused.
 */
export function readPoolSecurity(pool: Record<string, unknown>, at: string, https: boolean | null, context: SecurityContext): PoolSecuritySettings {
  const sources: SecretSource[] = [];
  const reading: Reading = { configDir: context.configDir, problems: context.problems, warnings: context.warnings, sources };
  const signingKeys = Object.hasOwn(pool, 'signing_secrets') ? readSigningSecrets(pool.signing_secrets, childPath(at, 'signing_secrets'), reading, context.env) : [];
  const bearerToken = Object.hasOwn(pool, 'bearer_token_file') ? readBearerToken(pool.bearer_token_file, childPath(at, 'bearer_token_file'), reading) : null;
  let tls: PoolTls | null = null;
  if (Object.hasOwn(pool, 'tls')) {
    const tlsAt = childPath(at, 'tls');
    if (https === false) context.problems.add(tlsAt, `applies to an https:// job_processing_uri only; this pool's is http:// (${preview(pool.job_processing_uri)})`);
    else tls = readTls(pool.tls, tlsAt, reading, context.now);
  }
  return { signingKeys, bearerToken, tls, secretSources: sources };
}

/**
 * A warning when the jobs config itself holds credentials (user:password in a URI, an authorization or
 * API key header) and every user can read it. `mode` is the file's st_mode.
 */
export function inlineCredentialWarning(file: string, mode: number, pools: readonly PoolConfig[]): string | null {
  if ((mode & 0o004) === 0) return null;
  const holders = pools.filter((pool) => Object.keys(pool.headers).some(isCredentialHeaderName)).map((pool) => pool.name);
  if (holders.length === 0) return null;
  return `${file} is readable by every user (mode ${octal(mode)}) and holds credentials (headers or user:password of pool ${holders.map((name) => JSON.stringify(name)).join(', ')}): chmod o-rwx ${file}, or move them to bearer_token_file`;
}
