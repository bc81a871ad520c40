/**
 * Federation PKI, the certificate authority: one CA per federation, certificates that carry an organisation and a
 * role, and a certificate revocation list (CRL). An organisation's own key and request are in identity.ts, reading
 * and checking a peer's certificate in verifier.ts, the names a certificate carries in names.ts. The files are plain
 * PEM so that gRPC (OpenSSL through Node's `tls`) can use them as they are:
 *
 * ```
 * <ca dir>/ca.pem          CA certificate (give a copy to every party; it is the `ca` of every TLS context)
 * <ca dir>/ca-key.pem      CA private key, PKCS#8, mode 0600 (never leaves the CA operator)
 * <ca dir>/crl.pem         signed CRL, PEM `X509 CRL` (the coordinator passes it as the `crl` of its TLS context)
 * <ca dir>/issued.json     index of issued certificates (serial, organisation, role, validity, revocation)
 * <ca dir>/issued/<org>-<role>/{cert.pem,key.pem,ca.pem}   what `issueCertificate` hands to a party
 * ```
 *
 * Keys are ECDSA P-256, signatures ECDSA with SHA-256. A certificate names its holder three ways, which must agree:
 * subject `CN=<org>, O=<org>, OU=<role>` and the subject alternative name URIs `urn:fedcredit:org:<org>` and
 * `urn:fedcredit:role:<role>`; the URIs are what {@link readIdentity} trusts. Coordinator certificates are TLS server
 * certificates (extended key usage serverAuth + clientAuth, DNS SAN `localhost`, IP SANs `127.0.0.1` and `::1`, plus
 * the hosts given at issue); every other role gets clientAuth only.
 *
 * The CRL has a `nextUpdate` (7 days by default). OpenSSL refuses every handshake once a CRL given to a TLS context
 * has passed its nextUpdate, so re-sign it with {@link refreshCrl} (or any {@link revokeCertificate}) before then and
 * hand the new crl.pem to the coordinator.
 *
 * The CA folder is meant to have a single writer: `issued.json` is rewritten atomically, but two processes issuing at
 * the same moment may lose one of the two index entries.
 *
 * Errors a user can cause are {@link FedcreditError}s with code CONFIG_INVALID (NOT_FOUND when a revocation selects
 * no certificate); messages name the file or folder and hints give the `fedcredit pki ...` command that fixes it.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { CRLNumber, id_ce_cRLNumber } from '@peculiar/asn1-x509';
import { type KeyObject, X509Certificate as NodeX509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { ErrorCode, FedcreditError } from '../errors.js';
import { x509 } from './x509.js';
import { type Role, ROLE_URI_PREFIX, ORGANISATION_URI_PREFIX, KEY_ALGORITHM, SIGNING_ALGORITHM, identityNames, normaliseSerial, checkOrganisation, checkRole, checkHosts, uniq } from './names.js';
import { writeFileAtomic, generateKeyPair, exportPrivateKeyPem } from './identity.js';

/** Reasons a certificate can be revoked for (RFC 5280 CRLReason; "unspecified" is deliberately not offered). */
export type RevocationReason = 'keyCompromise' | 'affiliationChanged' | 'superseded' | 'cessationOfOperation' | 'privilegeWithdrawn';

/** One row of `issued.json`. Dates are ISO-8601 strings. */
export interface IssuedCertificate {
  serial: string;
  organisation: string;
  role: Role;
  notBefore: string;
  notAfter: string;
  fingerprint256: string;
  issuedAt: string;
  /** Where cert.pem was written: relative to the CA folder when inside it, absolute otherwise. */
  certFile: string;
  revoked?: { at: string; reason: RevocationReason };
}

/** Paths of the files in a CA folder. */
export interface PkiPaths {
  caCert: string;
  caKey: string;
  crl: string;
  index: string;
  issuedDir: string;
}

export function pkiPaths(dir: string): PkiPaths {
  return {
    caCert: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca-key.pem'),
    crl: join(dir, 'crl.pem'),
    index: join(dir, 'issued.json'),
    issuedDir: join(dir, 'issued'),
  };
}

const DEFAULT_CA_NAME = 'fedcredit federation CA';

const DEFAULT_CA_VALIDITY_DAYS = 3650;

const DEFAULT_CERT_VALIDITY_DAYS = 365;

const DEFAULT_CRL_VALIDITY_DAYS = 7;

const DEFAULT_REVOCATION_REASON: RevocationReason = 'privilegeWithdrawn';

/** notBefore and CRL thisUpdate are set this far in the past so that peers with a slightly slow clock accept them. */
const CLOCK_SKEW_MS = 5 * 60_000;

const DAY_MS = 86_400_000;

const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

const INDEX_VERSION = 1;

interface PkiIndex {
  version: 1;
  ca: { subject: string; serial: string; notAfter: string };
  /** Number of the last CRL written (the RFC 5280 cRLNumber extension). */
  crlNumber: number;
  certificates: IssuedCertificate[];
}

// CA

/**
 * Create a certificate authority in `dir` (created if missing, mode 0700): ca.pem, ca-key.pem (0600), an empty signed
 * crl.pem and issued.json. Refuses if the folder already holds a CA.
 *
 * @param opts.name CA common name (default "fedcredit federation CA").
 * @param opts.validityDays CA lifetime in days (default 3650). Certificates cannot outlive the CA.
 */
export async function initCa(dir: string, opts: { name?: string; validityDays?: number } = {}): Promise<void> {
  const paths = pkiPaths(dir);
  const existing = [paths.caCert, paths.caKey, paths.index].filter((f) => existsSync(f));
  if (existing.length > 0) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `a certificate authority already exists in ${dir} (found ${existing.map((f) => relative(dir, f)).join(', ')})`,
      `use the CA in ${dir} as it is (\`fedcredit pki issue\` issues more certificates), or pass another folder; ` + `deleting ${dir} to start over invalidates every certificate it issued`,
    );
  }
  const name = opts.name ?? DEFAULT_CA_NAME;
  if (name.trim() === '' || name.length > 64) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `CA name ${JSON.stringify(name)} is ${name.trim() === '' ? 'empty' : 'longer than 64 characters'}`,
      'pass a CA name of 1 to 64 characters, such as "acme federation CA"',
    );
  }
  const validityDays = checkDays(opts.validityDays ?? DEFAULT_CA_VALIDITY_DAYS, 'CA validityDays');

  const now = floorToSecond(new Date());
  const keys = await generateKeyPair();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerial(),
    name: [{ CN: [name] }],
    keys,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + validityDays * DAY_MS),
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const index: PkiIndex = {
    version: INDEX_VERSION,
    ca: { subject: caCert.subject, serial: normaliseSerial(caCert.serialNumber), notAfter: caCert.notAfter.toISOString() },
    crlNumber: 1,
    certificates: [],
  };
  const crlPem = await buildCrl(caCert, keys.privateKey, index, now, DEFAULT_CRL_VALIDITY_DAYS);

  await mkdir(dir, { recursive: true, mode: 0o700 });
  // The key first and with O_EXCL: two concurrent initCa calls cannot both succeed.
  await writeFile(paths.caKey, exportPrivateKeyPem(keys.privateKey), { mode: 0o600, flag: 'wx' });
  await chmod(paths.caKey, 0o600);
  await writeFile(paths.caCert, caCert.toString('pem') + '\n', { flag: 'wx' });
  await writeFileAtomic(paths.crl, crlPem);
  await writeIndex(paths.index, index);
}

/**
 * Issue a key pair and certificate for `organisation` acting as `role`, signed by the CA in `dir`.
 * Writes `cert.pem`, `key.pem` (PKCS#8, mode 0600) and a copy of `ca.pem` to `outDir`
 * (default `<dir>/issued/<organisation>-<role>`), and records the certificate in issued.json.
 *
 * Refuses to overwrite a folder holding a certificate that is still valid and not revoked.
 *
 * @param opts.validityDays lifetime in days (default 365); ignored when notAfter is given.
 * @param opts.hosts extra DNS names / IP addresses the coordinator is reached at (coordinator only).
 * @param opts.notBefore / opts.notAfter explicit validity (tests use them to make expired certificates);
 *   notBefore defaults to 5 minutes ago to tolerate clock skew between machines.
 */
export async function issueCertificate(
  dir: string,
  opts: {
    organisation: string;
    role: Role;
    validityDays?: number;
    hosts?: string[];
    outDir?: string;
    notBefore?: Date;
    notAfter?: Date;
  },
): Promise<{ certFile: string; keyFile: string; caFile: string; serial: string }> {
  const issue = await prepareIssue(dir, opts);
  const outDir = resolve(opts.outDir ?? join(pkiPaths(dir).issuedDir, `${issue.organisation}-${issue.role}`));
  const certFile = join(outDir, 'cert.pem');
  const keyFile = join(outDir, 'key.pem');
  refuseToReplaceLiveCertificate(certFile, issue.ca.index, issue.now);
  const keys = await generateKeyPair();
  const cert = await certifyKey(issue, keys.publicKey);
  await mkdir(outDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(keyFile, exportPrivateKeyPem(keys.privateKey), 0o600);
  const written = await writeIssued(dir, issue, cert, outDir);
  return { ...written, keyFile };
}

/**
 * Enrolment step 2, at the CA: check a certificate signing request (its signature, an ECDSA P-256 key, a fedcredit
 * organisation and role that its subject and SAN agree on, and, when the operator states them, that they are the
 * organisation and role expected) and issue the certificate for its key. Writes `cert.pem` and a copy of `ca.pem`
 * to `outDir` (default `<dir>/issued/<organisation>-<role>`), never a key, and records it in issued.json.
 */
export async function signCertificateRequest(
  dir: string,
  csrPem: string,
  opts: { expect?: { organisation?: string; role?: Role }; validityDays?: number; outDir?: string } = {},
): Promise<{ certFile: string; caFile: string; serial: string; organisation: string; role: Role }> {
  const bad = (why: string) =>
    new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `the certificate request ${why}`,
      'make a new request with `fedcredit pki request --org <organisation> --role <role> --out <folder>` and send its request.csr',
    );
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch {
    throw bad('is not a PEM PKCS#10 request ("-----BEGIN CERTIFICATE REQUEST-----")');
  }
  if (!(await csr.verify().catch(() => false))) throw bad('is not signed by the key it carries (altered after it was made)');
  const publicKey = await csr.publicKey.export(KEY_ALGORITHM, ['verify']).catch(() => undefined);
  if (!publicKey) throw bad('carries a key that is not ECDSA P-256');
  const san = csr.getExtension('2.5.29.17');
  const names = san ? new x509.SubjectAlternativeNameExtension(san.rawData).names.items : [];
  const uris = names.filter((n) => n.type === 'url').map((n) => n.value);
  const one = (prefix: string, what: string): string => {
    const values = uniq(uris.filter((u) => u.startsWith(prefix)).map((u) => u.slice(prefix.length)));
    if (values.length !== 1) throw bad(`names ${values.length === 0 ? 'no' : values.length} fedcredit ${what}${values.length > 1 ? 's' : ''} (subject alternative name ${prefix}<${what}>)`);
    return values[0]!;
  };
  const organisation = checkOrganisation(one(ORGANISATION_URI_PREFIX, 'organisation'));
  const role = checkRole(one(ROLE_URI_PREFIX, 'role'));
  for (const [field, value] of [
    ['O', organisation],
    ['OU', role],
  ] as const) {
    if (csr.subjectName.getField(field).some((v) => v !== value)) throw bad(`is contradictory: subject ${field}=${csr.subjectName.getField(field).join('+')} but its SAN says ${value}`);
  }
  const expected = opts.expect ?? {};
  for (const [what, want, got] of [
    ['organisation', expected.organisation, organisation],
    ['role', expected.role, role],
  ] as const) {
    if (want !== undefined && want !== got) {
      throw new FedcreditError(
        ErrorCode.CONFIG_INVALID,
        `the certificate request is for ${what} ${got}, not ${want} as the CA operator expected`,
        'refuse it and ask the requester why; sign only requests you can account for',
      );
    }
  }
  const hosts = names
    .filter((n) => n.type === 'dns' || n.type === 'ip')
    .map((n) => n.value)
    .filter((h) => !['localhost', '127.0.0.1', '::1'].includes(h));
  const issue = await prepareIssue(dir, { organisation, role, hosts, validityDays: opts.validityDays });
  const outDir = resolve(opts.outDir ?? join(pkiPaths(dir).issuedDir, `${organisation}-${role}`));
  refuseToReplaceLiveCertificate(join(outDir, 'cert.pem'), issue.ca.index, issue.now);
  const cert = await certifyKey(issue, publicKey);
  await mkdir(outDir, { recursive: true, mode: 0o700 });
  return { ...(await writeIssued(dir, issue, cert, outDir)), organisation, role };
}

interface IssueRequest {
  organisation: string;
  role: Role;
  hosts: string[];
  ca: LoadedCa;
  now: Date;
  notBefore: Date;
  notAfter: Date;
}

/** Validate what a certificate is to say and load the CA (what issuing a key and signing a request share). */
async function prepareIssue(dir: string, opts: { organisation: string; role: Role; hosts?: string[]; validityDays?: number; notBefore?: Date; notAfter?: Date }): Promise<IssueRequest> {
  const organisation = checkOrganisation(opts.organisation);
  const role = checkRole(opts.role);
  const hosts = checkHosts(opts.hosts ?? [], role);
  const ca = await loadCa(dir);
  const now = floorToSecond(new Date());
  const notBefore = floorToSecond(checkDate(opts.notBefore, 'notBefore') ?? new Date(now.getTime() - CLOCK_SKEW_MS));
  const notAfter = floorToSecond(checkDate(opts.notAfter, 'notAfter') ?? new Date(now.getTime() + checkDays(opts.validityDays ?? DEFAULT_CERT_VALIDITY_DAYS, 'validityDays') * DAY_MS));
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `certificate validity is empty: notAfter ${notAfter.toISOString()} is not after notBefore ${notBefore.toISOString()}`,
      'pass a notAfter later than notBefore, or a positive validityDays',
    );
  }
  if (notAfter.getTime() > ca.cert.notAfter.getTime()) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `a certificate valid until ${notAfter.toISOString()} would outlive the CA in ${dir}, which expires ${ca.cert.notAfter.toISOString()}`,
      'issue it with a shorter validityDays, or create a new CA with `fedcredit pki init` in another folder',
    );
  }
  return { organisation, role, hosts, ca, now, notBefore, notAfter };
}

/** The CA's certificate for `publicKey` with the identity of `issue`. */
async function certifyKey(issue: IssueRequest, publicKey: webcrypto.CryptoKey): Promise<x509.X509Certificate> {
  const { organisation, role, hosts, ca } = issue;
  const isCoordinator = role === 'coordinator';
  return x509.X509CertificateGenerator.create({
    serialNumber: newSerial(),
    subject: [{ CN: [organisation] }, { O: [organisation] }, { OU: [role] }],
    issuer: ca.cert.subjectName,
    notBefore: issue.notBefore,
    notAfter: issue.notAfter,
    publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(isCoordinator ? [EKU_SERVER_AUTH, EKU_CLIENT_AUTH] : [EKU_CLIENT_AUTH], false),
      new x509.SubjectAlternativeNameExtension(identityNames(organisation, role, hosts), false),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await authorityKeyIdentifier(ca.cert),
    ],
  });
}

/** Write cert.pem and a copy of ca.pem to `outDir` and record the certificate in the CA's issued.json. */
async function writeIssued(dir: string, issue: IssueRequest, cert: x509.X509Certificate, outDir: string): Promise<{ certFile: string; caFile: string; serial: string }> {
  const certFile = join(outDir, 'cert.pem');
  const caFile = join(outDir, 'ca.pem');
  const certPem = cert.toString('pem') + '\n';
  const nodeCert = new NodeX509Certificate(certPem);
  await writeFileAtomic(certFile, certPem);
  await writeFileAtomic(caFile, issue.ca.certPem);
  const rel = relative(resolve(dir), certFile);
  issue.ca.index.certificates.push({
    serial: normaliseSerial(nodeCert.serialNumber),
    organisation: issue.organisation,
    role: issue.role,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    fingerprint256: nodeCert.fingerprint256,
    issuedAt: issue.now.toISOString(),
    certFile: rel.startsWith('..') || isAbsolute(rel) ? certFile : rel,
  });
  await writeIndex(pkiPaths(dir).index, issue.ca.index);
  return { certFile, caFile, serial: normaliseSerial(nodeCert.serialNumber) };
}

/**
 * Revoke certificates issued by the CA in `dir` and rewrite crl.pem (thisUpdate now, nextUpdate now + 7 days by
 * default, CRL number incremented). Selects every certificate of an organisation (optionally only one role), or one
 * serial (hex, any case, leading zeros ignored).
 *
 * @returns `revoked`: serials revoked by this call; `alreadyRevoked`: selected serials that were revoked before.
 * @throws FedcreditError NOT_FOUND when the selector matches no certificate in issued.json.
 */
export async function revokeCertificate(
  dir: string,
  selector: { organisation: string; role?: Role } | { serial: string },
  opts: { reason?: RevocationReason; crlValidityDays?: number; now?: Date } = {},
): Promise<{ revoked: string[]; alreadyRevoked: string[] }> {
  const reason = opts.reason ?? DEFAULT_REVOCATION_REASON;
  if (!(reason in x509.X509CrlReason) || (reason as string) === 'unspecified') {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `unknown revocation reason ${JSON.stringify(reason)}`,
      'use one of keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn',
    );
  }
  const crlValidityDays = checkDays(opts.crlValidityDays ?? DEFAULT_CRL_VALIDITY_DAYS, 'crlValidityDays');
  const ca = await loadCa(dir);
  const now = floorToSecond(opts.now ?? new Date());

  let selected: IssuedCertificate[];
  let described: string;
  if ('serial' in selector) {
    const wanted = normaliseSerial(selector.serial);
    selected = ca.index.certificates.filter((c) => normaliseSerial(c.serial) === wanted);
    described = `serial ${selector.serial}`;
  } else {
    const organisation = checkOrganisation(selector.organisation);
    const role = selector.role === undefined ? undefined : checkRole(selector.role);
    selected = ca.index.certificates.filter((c) => c.organisation === organisation && (role === undefined || c.role === role));
    described = `organisation ${organisation}${role ? ` with role ${role}` : ''}`;
  }
  if (selected.length === 0) {
    throw new FedcreditError(
      ErrorCode.NOT_FOUND,
      `no certificate for ${described} in ${pkiPaths(dir).index}`,
      '`fedcredit pki list` shows the certificates this CA issued; only those can be revoked here',
    );
  }
  const revoked: string[] = [];
  const alreadyRevoked: string[] = [];
  for (const entry of selected) {
    if (entry.revoked) {
      alreadyRevoked.push(entry.serial);
    } else {
      entry.revoked = { at: now.toISOString(), reason };
      revoked.push(entry.serial);
    }
  }
  ca.index.crlNumber += 1;
  const crlPem = await buildCrl(ca.cert, ca.key, ca.index, now, crlValidityDays);
  // CRL before index: if the index write fails, the revocation is already in force and a retry reports it as done.
  await writeFileAtomic(pkiPaths(dir).crl, crlPem);
  await writeIndex(pkiPaths(dir).index, ca.index);
  return { revoked, alreadyRevoked };
}

/**
 * Re-sign crl.pem with the same revoked serials, a fresh thisUpdate/nextUpdate and the next CRL number. Run it before
 * the current CRL's nextUpdate: OpenSSL refuses every handshake once a configured CRL has expired.
 */
export async function refreshCrl(dir: string, opts: { crlValidityDays?: number; now?: Date } = {}): Promise<{ crlFile: string; crlNumber: number; thisUpdate: Date; nextUpdate: Date }> {
  const crlValidityDays = checkDays(opts.crlValidityDays ?? DEFAULT_CRL_VALIDITY_DAYS, 'crlValidityDays');
  const ca = await loadCa(dir);
  const now = floorToSecond(opts.now ?? new Date());
  ca.index.crlNumber += 1;
  const crlPem = await buildCrl(ca.cert, ca.key, ca.index, now, crlValidityDays);
  const crlFile = pkiPaths(dir).crl;
  await writeFileAtomic(crlFile, crlPem);
  await writeIndex(pkiPaths(dir).index, ca.index);
  const crl = new x509.X509Crl(crlPem);
  return { crlFile, crlNumber: ca.index.crlNumber, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate! };
}

/** The certificates the CA in `dir` issued, oldest first, as recorded in issued.json. */
export async function listIssued(dir: string): Promise<IssuedCertificate[]> {
  return (await readIndex(dir)).certificates;
}

interface LoadedCa {
  cert: x509.X509Certificate;
  certPem: string;
  key: webcrypto.CryptoKey;
  index: PkiIndex;
}

async function loadCa(dir: string): Promise<LoadedCa> {
  const paths = pkiPaths(dir);
  const initHint = `create a CA with \`fedcredit pki init ${dir}\`, or pass the folder that holds ca.pem and ca-key.pem`;
  const read = async (file: string, what: string): Promise<string> => {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new FedcreditError(
        ErrorCode.CONFIG_INVALID,
        code === 'ENOENT' ? `no certificate authority in ${dir}: ${what} ${file} does not exist` : `cannot read ${what} ${file}: ${code ?? String(err)}`,
        code === 'ENOENT' ? initHint : `check the permissions of ${file}`,
      );
    }
  };
  const certPem = await read(paths.caCert, 'CA certificate');
  const keyPem = await read(paths.caKey, 'CA key');
  const index = await readIndex(dir);
  let cert: x509.X509Certificate;
  let nodeCert: NodeX509Certificate;
  try {
    cert = new x509.X509Certificate(certPem);
    nodeCert = new NodeX509Certificate(certPem);
  } catch {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${paths.caCert} is not a PEM certificate`, initHint);
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(keyPem);
  } catch {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${paths.caKey} is not a PEM private key`, initHint);
  }
  if (keyObject.asymmetricKeyType !== 'ec' || keyObject.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${paths.caKey} is not an ECDSA P-256 key`, initHint);
  }
  if (!nodeCert.checkPrivateKey(keyObject)) {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${paths.caKey} is not the key of ${paths.caCert}`, initHint);
  }
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  const key = await webcrypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
  return { cert, certPem: certPem.endsWith('\n') ? certPem : certPem + '\n', key, index };
}

async function readIndex(dir: string): Promise<PkiIndex> {
  const file = pkiPaths(dir).index;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      code === 'ENOENT' ? `no certificate authority in ${dir}: ${file} does not exist` : `cannot read ${file}: ${code ?? String(err)}`,
      code === 'ENOENT' ? `create a CA with \`fedcredit pki init ${dir}\`` : `check the permissions of ${file}`,
    );
  }
  let index: PkiIndex;
  try {
    index = JSON.parse(text) as PkiIndex;
  } catch (err) {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${file} is not valid JSON: ${(err as Error).message}`, `restore ${file} from a backup`);
  }
  if (index?.version !== INDEX_VERSION || !Array.isArray(index.certificates) || typeof index.crlNumber !== 'number') {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `${file} is not a fedcredit certificate index (version ${INDEX_VERSION})`,
      `restore ${file} from a backup; it is written by \`fedcredit pki init\``,
    );
  }
  return index;
}

async function writeIndex(file: string, index: PkiIndex): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(index, null, 2) + '\n');
}

async function buildCrl(caCert: x509.X509Certificate, signingKey: webcrypto.CryptoKey, index: PkiIndex, now: Date, validityDays: number): Promise<string> {
  const thisUpdate = new Date(now.getTime() - CLOCK_SKEW_MS);
  const crl = await x509.X509CrlGenerator.create({
    issuer: caCert.subjectName,
    thisUpdate,
    nextUpdate: new Date(now.getTime() + validityDays * DAY_MS),
    signingKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [await authorityKeyIdentifier(caCert), new x509.Extension(id_ce_cRLNumber, false, AsnConvert.serialize(new CRLNumber(index.crlNumber)))],
    entries: index.certificates
      .filter((c) => c.revoked)
      .map((c) => ({
        serialNumber: c.serial,
        revocationDate: new Date(c.revoked!.at),
        // Always a non-zero reason: the generator writes an empty (invalid) entry-extensions SEQUENCE otherwise.
        reason: x509.X509CrlReason[c.revoked!.reason],
      })),
  });
  // The library's PEM label is "CRL"; OpenSSL (Node's tls `crl` option) only reads "X509 CRL".
  return x509.PemConverter.encode(crl.rawData, 'X509 CRL') + '\n';
}

async function authorityKeyIdentifier(caCert: x509.X509Certificate): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
  return ski ? new x509.AuthorityKeyIdentifierExtension(ski.keyId) : x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey);
}

function refuseToReplaceLiveCertificate(certFile: string, index: PkiIndex, now: Date): void {
  if (!existsSync(certFile)) return;
  let serial: string;
  let notAfter: Date;
  try {
    const existing = new NodeX509Certificate(readFileSync(certFile));
    serial = normaliseSerial(existing.serialNumber);
    notAfter = new x509.X509Certificate(existing.raw).notAfter;
  } catch {
    return; // not a certificate: nothing live to protect
  }
  const entry = index.certificates.find((c) => normaliseSerial(c.serial) === serial);
  if (entry?.revoked || notAfter.getTime() < now.getTime()) return;
  throw new FedcreditError(
    ErrorCode.CONFIG_INVALID,
    `${certFile} holds a certificate (serial ${serial}) that is still valid until ${notAfter.toISOString()} and not revoked`,
    `revoke it first with \`fedcredit pki revoke --serial ${serial}\`, or issue into another folder`,
  );
}

/** 16 random bytes, positive and without a leading zero byte, so its DER form and Node's hex agree. */
function newSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f || 0x01;
  return bytes.toString('hex').toUpperCase();
}

function checkDays(days: number, what: string): number {
  if (!Number.isFinite(days) || days <= 0) {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${what} must be a positive number of days, got ${days}`, `pass a positive ${what}`);
  }
  return days;
}

function checkDate(date: Date | undefined, what: string): Date | undefined {
  if (date !== undefined && !(date instanceof Date && Number.isFinite(date.getTime()))) {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${what} is not a valid date`, `pass a Date for ${what}`);
  }
  return date;
}

function floorToSecond(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}
