/**
 * An organisation's own identity: its key and certificate signing request (`fedcredit pki request`, on its own
 * machine: only the request travels to the CA), and the TLS material (CA, certificate, key, CRL) loaded and checked
 * to fit together.
 */
import { KeyObject, type X509Certificate as NodeX509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCode, FedcreditError } from '../errors.js';
import { x509 } from './x509.js';
import { type Role, KEY_ALGORITHM, SIGNING_ALGORITHM, identityNames, checkOrganisation, checkRole, checkHosts, oneLine } from './names.js';
import { checkCrlIssuer, parseCaBundle, parseNodeCert, safeVerify } from './verifier.js';

/** Buffers ready for `tls.createSecureContext` / `grpc.credentials.createSsl` / `grpc.ServerCredentials.createSsl`. */
export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  crl?: Buffer;
}

/**
 * Enrolment where the key never leaves its owner, step 1, on the organisation's own machine: make an ECDSA P-256
 * key (`key.pem`, mode 0600, in a 0700 folder) and a PKCS#10 certificate signing request (`request.csr`) naming
 * the organisation and role the way issued certificates do (subject CN/O/OU and the fedcredit SAN URIs). Only the
 * request goes to the CA's operator; `signCertificateRequest` (`fedcredit pki sign`) answers it with `cert.pem`.
 */
export async function requestCertificate(outDir: string, opts: { organisation: string; role: Role; hosts?: string[] }): Promise<{ csrFile: string; keyFile: string }> {
  const organisation = checkOrganisation(opts.organisation);
  const role = checkRole(opts.role);
  const hosts = checkHosts(opts.hosts ?? [], role);
  const dir = resolve(outDir);
  const keyFile = join(dir, 'key.pem');
  const csrFile = join(dir, 'request.csr');
  if (existsSync(keyFile)) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `${keyFile} already exists: a certificate request would replace the key of the identity in ${dir}`,
      'choose an empty folder with --out, or move the old identity away first',
    );
  }
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [organisation] }, { O: [organisation] }, { OU: [role] }],
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [new x509.SubjectAlternativeNameExtension(identityNames(organisation, role, hosts), false)],
  });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(keyFile, exportPrivateKeyPem(keys.privateKey), 0o600);
  await writeFileAtomic(csrFile, csr.toString('pem') + '\n');
  return { csrFile, keyFile };
}

/**
 * Read the PEM files a TLS endpoint needs and check they fit together: `ca` holds a certificate, `cert` parses and
 * was issued by `ca`, `key` is a private key matching `cert`, and `crl` (optional) is a PEM `X509 CRL` issued by
 * the CA. Errors name the file and the fix. Expiry is not checked here (see {@link verifyPeer}).
 */
export function loadTlsMaterial(paths: { ca: string; cert: string; key: string; crl?: string }): TlsMaterial {
  const issueHint = (file: string) => `issue a certificate with \`fedcredit pki issue --org <organisation> --role <role>\` and point ${file} at the ` + 'files it writes (cert.pem, key.pem, ca.pem)';
  const ca = readMaterialFile(paths.ca, 'CA certificate', 'copy ca.pem from the federation CA (every issued folder has a copy), or ' + issueHint('the TLS settings'));
  const cert = readMaterialFile(paths.cert, 'certificate', issueHint('the certificate setting'));
  const key = readMaterialFile(paths.key, 'private key', issueHint('the key setting'));
  const crl = paths.crl === undefined ? undefined : readMaterialFile(paths.crl, 'CRL', 'copy crl.pem from the CA folder (`fedcredit pki revoke` and `fedcredit pki refresh-crl` rewrite it)');

  const caCerts = parseCaBundle(ca, paths.ca);
  let nodeCert: NodeX509Certificate;
  try {
    nodeCert = parseNodeCert(cert);
  } catch {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${paths.cert} does not hold a PEM certificate`, issueHint(paths.cert));
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `${paths.key} does not hold a PEM private key${key.includes('BEGIN CERTIFICATE') ? ' (it holds a certificate: are the key and cert paths swapped?)' : ''}`,
      issueHint(paths.key),
    );
  }
  if (!nodeCert.checkPrivateKey(keyObject)) {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${paths.key} is not the private key of ${paths.cert}`, 'use the key.pem written next to that cert.pem by `fedcredit pki issue`');
  }
  if (!caCerts.some((c) => nodeCert.checkIssued(c) && safeVerify(nodeCert, c))) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `${paths.cert} (issued by ${oneLine(nodeCert.issuer)}) was not issued by the CA in ${paths.ca} (${caCerts.map((c) => oneLine(c.subject)).join(' / ')})`,
      'use the ca.pem of the federation CA that issued the certificate; all parties of a federation share one CA',
    );
  }
  if (crl) {
    const text = crl.toString('utf8');
    if (!text.includes('-----BEGIN X509 CRL-----')) {
      throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${paths.crl} is not a PEM CRL (no "-----BEGIN X509 CRL-----" block)`, 'copy crl.pem from the federation CA folder');
    }
    const check = checkCrlIssuer(crl, caCerts);
    if (!check.ok) {
      throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${paths.crl}: ${check.detail}`, 'copy crl.pem from the folder of the CA in ' + paths.ca);
    }
  }
  return crl ? { ca, cert, key, crl } : { ca, cert, key };
}

/** Write via a temporary file and rename, so readers never see a half-written file. */
export async function writeFileAtomic(file: string, data: string, mode = 0o644): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' });
    await chmod(tmp, mode); // the umask may have removed bits; never adds any
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

function readMaterialFile(file: string, what: string, hint: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : code === 'EISDIR' ? 'is a folder, not a file' : `cannot be read (${code ?? String(err)})`;
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `TLS ${what} file ${file} ${why}`, hint);
  }
}

export async function generateKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

export function exportPrivateKeyPem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }) as string;
}
