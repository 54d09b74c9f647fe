/**
 * `--web_config_file` (docs/observability.md, Access): TLS and basic authentication for the exporter, in
 * the Prometheus exporter-toolkit's `--web.config.file` format, so the file an operator wrote for
 * node_exporter works here unchanged:
 *
 *   tls_server_config:
 *     cert_file: server.crt
 *     key_file: server.key
 *   basic_auth_users:
 *     prometheus: $2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG
 *
 * Decisions:
 * - Read and checked once, at startup and by --check, like every other config (one line per problem,
 *   exit 2); the toolkit re-reads it on every request, driveshaft needs a restart to change it.
 * - A subset of the toolkit's keys: cert_file, key_file, client_ca_file, client_auth_type
 *   (NoClientCert or RequireAndVerifyClientCert, the one the toolkit's docs call secure), min_version
 *   and max_version (TLS12, TLS13), basic_auth_users. Every other key of the format (inline PEM,
 *   cipher_suites, client_allowed_sans, http_server_config, rate_limit…) is refused by name: a security
 *   setting silently ignored would be worse than a file that does not load.
 * - Relative paths are relative to the file's folder, as in the toolkit and the jobs config.
 * - Passwords are bcrypt hashes ($2a$, $2b$ or $2y$), checked here for their form only.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { childPath } from './json-source.js';
import { Problems, checkKeys, isPlainObject } from './problems.js';
import { describeWithoutValue } from './redact.js';
import { permissionWarning } from './security.js';
import { YamlSubsetError, parseSimpleYaml } from './simple-yaml.js';

export const ClientAuth = {
  NONE: 'NoClientCert',
  REQUIRE_AND_VERIFY: 'RequireAndVerifyClientCert',
} as const;
export type ClientAuth = (typeof ClientAuth)[keyof typeof ClientAuth];

export interface ExporterTls {
  cert: string;
  certFile: string;
  key: string;
  keyFile: string;
  clientCa: string | null;
  clientCaFile: string | null;
  clientAuth: ClientAuth;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  maxVersion: 'TLSv1.2' | 'TLSv1.3';
}

export interface ExporterWebConfig {
  file: string;
  tls: ExporterTls | null;
  /** User name → bcrypt hash; empty: no authentication. */
  basicAuthUsers: Record<string, string>;
  /** What loads but deserves a look (a key file others can read, passwords sent without TLS). */
  warnings: string[];
}

const TOP_KEYS = { required: [], optional: ['tls_server_config', 'basic_auth_users'] } as const;
const TLS_KEYS = { required: ['cert_file', 'key_file'], optional: ['client_ca_file', 'client_auth_type', 'min_version', 'max_version'] } as const;
/** Keys of the toolkit's format that driveshaft does not implement: named, so the refusal is clear. */
const UNSUPPORTED: Record<string, readonly string[]> = {
  '': ['http_server_config', 'rate_limit'],
  tls_server_config: ['cert', 'key', 'client_ca', 'client_allowed_sans', 'cipher_suites', 'prefer_server_cipher_suites', 'curve_preferences'],
};
const TLS_VERSIONS: Record<string, ExporterTls['minVersion']> = { TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' };
/** bcrypt's modular crypt form: $2a$, $2b$ or $2y$, a two-digit cost, 22 characters of salt and 31 of hash. */
const BCRYPT_HASH = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const MIN_BCRYPT_COST = 4;
const MAX_BCRYPT_COST = 31;

const READ_REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a parent of the path is not a directory',
};

function readReason(error: unknown): string {
  return READ_REASONS[(error as NodeJS.ErrnoException).code ?? ''] ?? (error as Error).message;
}

interface Reading {
  dir: string;
  problems: Problems;
  warnings: string[];
}

/** The file `value` names and its text, or null after a problem line. */
function readNamedFile(value: unknown, at: string, reading: Reading, secret: boolean): { file: string; text: string } | null {
  if (typeof value !== 'string' || value === '' || /[\x00-\x1f\x7f]/.test(value)) {
    reading.problems.expected(at, 'a file path', value);
    return null;
  }
  const file = path.resolve(reading.dir, value);
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) {
      reading.problems.add(at, `cannot read ${file}: not a regular file`);
      return null;
    }
    const text = fs.readFileSync(file, 'utf8');
    const warning = secret ? permissionWarning(file, stat.mode, at) : null;
    if (warning !== null) reading.warnings.push(warning);
    return { file, text };
  } catch (error) {
    reading.problems.add(at, `cannot read ${file}: ${readReason(error)}`);
    return null;
  }
}

function certificateOf(read: { file: string; text: string }, at: string, problems: Problems): X509Certificate | null {
  try {
    return new X509Certificate(read.text);
  } catch (error) {
    problems.add(at, `${read.file}: expected a PEM certificate ("-----BEGIN CERTIFICATE-----"): ${(error as Error).message}`);
    return null;
  }
}

function readTlsVersion(value: unknown, at: string, fallback: ExporterTls['minVersion'], problems: Problems): ExporterTls['minVersion'] {
  if (value === undefined || value === null) return fallback;
  const version = typeof value === 'string' ? TLS_VERSIONS[value] : undefined;
  if (version !== undefined) return version;
  problems.expected(at, '"TLS12" or "TLS13" (older versions are not offered)', value);
  return fallback;
}

function readTls(value: unknown, reading: Reading): ExporterTls | null {
  const at = 'tls_server_config';
  const { problems } = reading;
  if (!isPlainObject(value)) {
    problems.expected(at, 'a mapping with cert_file and key_file', value);
    return null;
  }
  refuseUnsupported(value, at, problems);
  checkKeys(withoutUnsupported(value, at), at, TLS_KEYS, problems, { cert_file: 'the server certificate (PEM) file', key_file: 'its private key (PEM) file' });
  const before = problems.lines.length;
  const key = (name: string): string => childPath(at, name);
  const certRead = Object.hasOwn(value, 'cert_file') ? readNamedFile(value.cert_file, key('cert_file'), reading, false) : null;
  const keyRead = Object.hasOwn(value, 'key_file') ? readNamedFile(value.key_file, key('key_file'), reading, true) : null;
  const certificate = certRead === null ? null : certificateOf(certRead, key('cert_file'), problems);
  if (keyRead !== null) {
    try {
      const privateKey = createPrivateKey(keyRead.text);
      if (certificate !== null && certRead !== null && !certificate.checkPrivateKey(privateKey)) {
        problems.add(key('key_file'), `${keyRead.file} is not the private key of the certificate in ${certRead.file}`);
      }
    } catch (error) {
      const encrypted = (error as { code?: unknown }).code === 'ERR_MISSING_PASSPHRASE';
      problems.add(key('key_file'), `${keyRead.file}: expected an unencrypted PEM private key${encrypted ? ' (this one needs a passphrase)' : ''}`);
    }
  }
  let clientAuth: ClientAuth = ClientAuth.NONE;
  if (value.client_auth_type !== undefined && value.client_auth_type !== null) {
    if (value.client_auth_type === ClientAuth.NONE || value.client_auth_type === ClientAuth.REQUIRE_AND_VERIFY) clientAuth = value.client_auth_type;
    else problems.expected(key('client_auth_type'), `"${ClientAuth.NONE}" or "${ClientAuth.REQUIRE_AND_VERIFY}"`, value.client_auth_type);
  }
  let clientCa: { file: string; text: string } | null = null;
  if (Object.hasOwn(value, 'client_ca_file')) {
    clientCa = readNamedFile(value.client_ca_file, key('client_ca_file'), reading, false);
    if (clientCa !== null) certificateOf(clientCa, key('client_ca_file'), problems);
  }
  if (clientAuth === ClientAuth.REQUIRE_AND_VERIFY && !Object.hasOwn(value, 'client_ca_file')) {
    problems.add(key('client_ca_file'), `missing; ${ClientAuth.REQUIRE_AND_VERIFY} needs the CA that signs the client certificates`);
  }
  const minVersion = readTlsVersion(value.min_version, key('min_version'), 'TLSv1.2', problems);
  const maxVersion = readTlsVersion(value.max_version, key('max_version'), 'TLSv1.3', problems);
  if (minVersion > maxVersion) problems.add(key('max_version'), `is below min_version`);
  if (problems.lines.length > before || certRead === null || keyRead === null) return null;
  return {
    cert: certRead.text,
    certFile: certRead.file,
    key: keyRead.text,
    keyFile: keyRead.file,
    clientCa: clientCa?.text ?? null,
    clientCaFile: clientCa?.file ?? null,
    clientAuth,
    minVersion,
    maxVersion,
  };
}

function readUsers(value: unknown, problems: Problems): Record<string, string> {
  const at = 'basic_auth_users';
  const users = new Map<string, string>();
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value)) {
    problems.expected(at, 'a mapping of user names to bcrypt hashes', value);
    return {};
  }
  for (const [user, hash] of Object.entries(value)) {
    const userAt = childPath(at, user);
    if (user === '' || user.includes(':') || /[\x00-\x1f\x7f]/.test(user)) {
      problems.add(userAt, 'expected a user name without ":" or control characters (basic auth splits "user:password" at the first ":")');
      continue;
    }
    const match = typeof hash === 'string' ? BCRYPT_HASH.exec(hash) : null;
    const cost = match === null ? NaN : Number(match[1]);
    if (match === null || cost < MIN_BCRYPT_COST || cost > MAX_BCRYPT_COST) {
      // A value that is no hash may be the password itself, written in by mistake: never shown.
      problems.add(userAt, `expected a bcrypt hash ($2y$10$… from \`htpasswd -nBC 10 "" | tr -d ':\\n'\`, cost ${MIN_BCRYPT_COST} to ${MAX_BCRYPT_COST}), got ${describeWithoutValue(hash)}`);
      continue;
    }
    users.set(user, hash as string);
  }
  return Object.fromEntries(users);
}

function refuseUnsupported(value: Record<string, unknown>, at: string, problems: Problems): void {
  for (const name of UNSUPPORTED[at] ?? []) {
    if (Object.hasOwn(value, name)) problems.add(childPath(at, name), 'not supported by driveshaft (see docs/observability.md for the keys it reads); remove it');
  }
}

function withoutUnsupported(value: Record<string, unknown>, at: string): Record<string, unknown> {
  const unsupported = UNSUPPORTED[at] ?? [];
  return Object.fromEntries(Object.entries(value).filter(([name]) => !unsupported.includes(name)));
}

/** Validates the text of a web config file named `file`. Throws ConfigError with every problem found. */
export function parseWebConfig(text: string, file: string): ExporterWebConfig {
  const problems = new Problems(file);
  let root: unknown;
  try {
    root = parseSimpleYaml(text);
  } catch (error) {
    if (!(error instanceof YamlSubsetError)) throw error;
    throw new ConfigError([`${file}: line ${error.line}: ${error.message}`]);
  }
  if (root === null) root = {};
  if (!isPlainObject(root)) {
    problems.expected('', 'a mapping with tls_server_config and/or basic_auth_users', root);
    throw new ConfigError(problems.lines);
  }
  refuseUnsupported(root, '', problems);
  checkKeys(withoutUnsupported(root, ''), '', TOP_KEYS, problems);
  const reading: Reading = { dir: path.dirname(path.resolve(file)), problems, warnings: [] };
  const tls = Object.hasOwn(root, 'tls_server_config') && root.tls_server_config !== null ? readTls(root.tls_server_config, reading) : null;
  const basicAuthUsers = readUsers(root.basic_auth_users, problems);
  if (problems.lines.length > 0) throw new ConfigError(problems.lines);
  if (tls === null && Object.keys(basicAuthUsers).length > 0) {
    reading.warnings.push(`${file}: basic_auth_users without tls_server_config: passwords cross the network in clear text`);
  }
  return { file: path.resolve(file), tls, basicAuthUsers, warnings: reading.warnings };
}

/** Reads and validates a web config file (startup and --check). */
export function loadWebConfig(file: string): ExporterWebConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([`${file}: cannot read web config: ${readReason(error)}`], { cause: error });
  }
  return parseWebConfig(text, file);
}

/** One line for --check: what the exporter will require, never a hash. */
export function describeWebConfig(config: ExporterWebConfig): string {
  const parts: string[] = [];
  if (config.tls === null) parts.push('no TLS');
  else parts.push(`TLS with ${config.tls.certFile}${config.tls.clientAuth === ClientAuth.REQUIRE_AND_VERIFY ? `, client certificates signed by ${config.tls.clientCaFile ?? ''}` : ''}`);
  const users = Object.keys(config.basicAuthUsers).length;
  parts.push(users === 0 ? 'no basic auth' : `basic auth for ${users} user${users === 1 ? '' : 's'}`);
  return `web config ${config.file} OK: ${parts.join(', ')}`;
}
