/**
 * A private certificate authority made with the `openssl` CLI for one test run: a CA, server
 * certificates it signs (one for 127.0.0.1, one only for the name endpoint.test), a client certificate
 * for mutual TLS, and a second, unrelated CA. Real certificates, so the TLS errors the tests see are the
 * ones an operator would.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface KeyPair {
  keyFile: string;
  certFile: string;
  key: string;
  cert: string;
}

export interface TestPki {
  dir: string;
  /** The CA that signs every certificate below. */
  ca: KeyPair;
  /** Server certificate valid for IP 127.0.0.1 and DNS localhost. */
  server: KeyPair;
  /** Server certificate valid only for DNS endpoint.test (the server_name case). */
  namedServer: KeyPair;
  /** Client certificate (extendedKeyUsage clientAuth) for mutual TLS. */
  client: KeyPair;
  /** A CA that signed none of the above. */
  otherCa: KeyPair;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function pair(dir: string, name: string): KeyPair {
  const keyFile = path.join(dir, `${name}.key`);
  const certFile = path.join(dir, `${name}.pem`);
  return { keyFile, certFile, key: fs.readFileSync(keyFile, 'utf8'), cert: fs.readFileSync(certFile, 'utf8') };
}

function selfSigned(dir: string, name: string, subject: string): KeyPair {
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', subject, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return pair(dir, name);
}

function signed(dir: string, name: string, subject: string, extensions: string): KeyPair {
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  fs.writeFileSync(path.join(dir, `${name}.ext`), extensions);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]);
  return pair(dir, name);
}

/** Creates the certificates in a fresh folder; `cleanup` registers its removal (t.after). */
export function makeTestPki(cleanup: (fn: () => void) => void): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'driveshaft-pki-'));
  cleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ca = selfSigned(dir, 'ca', '/CN=driveshaft test CA');
  const server = signed(dir, 'server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  const namedServer = signed(dir, 'named-server', '/CN=endpoint.test', 'subjectAltName=DNS:endpoint.test\nextendedKeyUsage=serverAuth\n');
  const client = signed(dir, 'client', '/CN=driveshaft client', 'extendedKeyUsage=clientAuth\n');
  const otherCa = selfSigned(dir, 'other-ca', '/CN=some other CA');
  for (const file of fs.readdirSync(dir)) if (file.endsWith('.key')) fs.chmodSync(path.join(dir, file), 0o600);
  return { dir, ca, server, namedServer, client, otherCa };
}
