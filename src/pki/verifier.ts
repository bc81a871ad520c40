/**
 * The verifier transport uses: reads the fedcredit identity (organisation, role, serial, fingerprint) from a peer's
 * certificate, and checks a certificate against the federation CA and its revocation list (chain, validity, CRL).
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { X509Certificate as NodeX509Certificate, verify as cryptoVerify } from 'node:crypto';
import { ErrorCode, FedcreditError } from '../errors.js';
import { x509 } from './x509.js';
import { type Role, ROLES, ORGANISATION_PATTERN, ROLE_URI_PREFIX, ORGANISATION_URI_PREFIX, normaliseSerial, oneLine, uniq } from './names.js';

/** Identity read from a certificate. `serial` is upper-case hex like Node's `PeerCertificate.serialNumber`. */
export interface PeerIdentity {
  organisation: string;
  role: Role;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 fingerprint, colon-separated upper-case hex, like Node's `PeerCertificate.fingerprint256`. */
  fingerprint256: string;
}

/** Why {@link verifyPeer} refused a certificate. */
export type RefusalReason =
  | 'expired'
  | 'not-yet-valid'
  | 'wrong-ca'
  | 'revoked'
  | 'self-signed'
  | 'malformed'
  /** The CRL given to verifyPeer is expired, not yet valid, not signed by the CA, or unreadable. */
  | 'crl-invalid';

export type PeerVerdict = { ok: true; identity: PeerIdentity } | { ok: false; reason: RefusalReason; detail: string };

/** Signature algorithms verifyPeer accepts on a CRL, by OID. */
const CRL_SIGNATURE_HASHES: Record<string, string> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

/**
 * Read the fedcredit identity from a certificate: PEM (string or Buffer) or DER Buffer, e.g. the `raw` of the
 * `PeerCertificate` gRPC/TLS hands over. Does not verify anything: use {@link verifyPeer} or rely on the TLS handshake.
 *
 * @throws FedcreditError CONFIG_INVALID when the certificate cannot be parsed or lacks (or has contradictory)
 *   organisation/role.
 */
export function readIdentity(certPem: string | Buffer): PeerIdentity {
  const nodeCert = parseNodeCert(certPem);
  const cert = new x509.X509Certificate(nodeCert.raw);
  const describe = `certificate "${cert.subject}" (serial ${normaliseSerial(nodeCert.serialNumber)})`;
  const fix = 'issue the certificate with `fedcredit pki issue --org <organisation> --role <role>`';

  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const uris = san ? san.names.items.filter((n) => n.type === 'url').map((n) => n.value) : [];
  const pick = (prefix: string, what: string): string => {
    const values = uniq(uris.filter((u) => u.startsWith(prefix)).map((u) => u.slice(prefix.length)));
    if (values.length === 0) {
      throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${describe} carries no fedcredit ${what} (subject alternative name URI ${prefix}<${what}>)`, fix);
    }
    if (values.length > 1) {
      throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${describe} carries ${values.length} different ${what}s (${values.join(', ')}); a certificate has exactly one`, fix);
    }
    return values[0]!;
  };
  const organisation = pick(ORGANISATION_URI_PREFIX, 'organisation');
  const role = pick(ROLE_URI_PREFIX, 'role');
  if (!ORGANISATION_PATTERN.test(organisation)) {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${describe} has an invalid organisation name ${JSON.stringify(organisation)}`, fix);
  }
  if (!(ROLES as readonly string[]).includes(role)) {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${describe} has an unknown role ${JSON.stringify(role)} (known: ${ROLES.join(', ')})`, fix);
  }
  // The subject must not contradict the SAN URIs.
  for (const [field, expected] of [
    ['O', organisation],
    ['OU', role],
  ] as const) {
    const values = cert.subjectName.getField(field);
    if (values.some((v) => v !== expected)) {
      throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${describe} is contradictory: subject ${field}=${values.join('+')} but SAN says ${expected}`, fix);
    }
  }
  return {
    organisation,
    role: role as Role,
    serial: normaliseSerial(nodeCert.serialNumber),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    fingerprint256: nodeCert.fingerprint256,
  };
}

/**
 * Check a peer certificate the way OpenSSL does during the handshake with `ca` (and `crl`) configured: issued and
 * signed by the CA, not self-signed, not revoked by a valid CRL signed by the CA, within its validity period (and the
 * CA within its own), and carrying a fedcredit identity. Meant for logging why a peer was refused, and for tests.
 * Extended key usage (which the TLS stack also checks) is not checked here.
 *
 * `material.ca` may hold several PEM certificates (a bundle); `material.crl` may hold several PEM CRLs.
 *
 * Reasons and the `authorizationError` codes Node reports for the same refusal (Node lets OpenSSL carry on after the
 * first error and reports the last, so a refused certificate can show a later code):
 * - `expired` / `not-yet-valid`: CERT_HAS_EXPIRED / CERT_NOT_YET_VALID
 * - `wrong-ca`: UNABLE_TO_VERIFY_LEAF_SIGNATURE, UNABLE_TO_GET_ISSUER_CERT_LOCALLY, CERT_SIGNATURE_FAILURE
 * - `self-signed`: DEPTH_ZERO_SELF_SIGNED_CERT (UNABLE_TO_GET_CRL when a CRL is configured)
 * - `revoked`: CERT_REVOKED
 * - `crl-invalid`: CRL_HAS_EXPIRED, CRL_NOT_YET_VALID, CRL_SIGNATURE_FAILURE, UNABLE_TO_GET_CRL
 * - `malformed`: the certificate does not parse, or chains to the CA but carries no fedcredit identity
 *
 * @param at the moment to check at (default now).
 * @throws FedcreditError CONFIG_INVALID when `material.ca` holds no readable certificate (a local problem, not the
 *   peer's).
 */
export function verifyPeer(certPem: Buffer | string, material: { ca: Buffer; crl?: Buffer }, at: Date = new Date()): PeerVerdict {
  const refuse = (reason: RefusalReason, detail: string): PeerVerdict => ({ ok: false, reason, detail });
  const caCerts = parseCaBundle(material.ca, 'the CA given to verifyPeer');

  let peer: NodeX509Certificate;
  try {
    peer = parseNodeCert(certPem);
  } catch (err) {
    return refuse('malformed', err instanceof FedcreditError ? err.message : String(err));
  }
  const subject = oneLine(peer.subject);
  const serial = normaliseSerial(peer.serialNumber);

  // A self-signed certificate (including the CA certificate itself) is never a peer certificate.
  if (peer.issuer === peer.subject && safeVerify(peer, peer)) {
    const isCa = caCerts.some((ca) => ca.fingerprint256 === peer.fingerprint256);
    return refuse(
      'self-signed',
      isCa
        ? `peer presented the federation CA certificate itself (${subject}) instead of a certificate issued by it`
        : `certificate ${subject} (serial ${serial}) is self-signed, not issued by the federation CA`,
    );
  }
  // Chain: one level, leaf -> CA.
  const issuer = caCerts.find((ca) => peer.checkIssued(ca) && safeVerify(peer, ca));
  if (!issuer) {
    const sameName = caCerts.some((ca) => ca.subject === peer.issuer);
    return refuse(
      'wrong-ca',
      sameName
        ? `certificate ${subject} (serial ${serial}) names ${oneLine(peer.issuer)} as issuer but was not signed by the federation CA's key (another CA with the same name?)`
        : `certificate ${subject} (serial ${serial}) was issued by ${oneLine(peer.issuer)}, not by the federation CA ${caCerts.map((c) => oneLine(c.subject)).join(' / ')}`,
    );
  }

  let identity: PeerIdentity;
  try {
    identity = readIdentity(peer.raw);
  } catch (err) {
    return refuse('malformed', err instanceof FedcreditError ? err.message : String(err));
  }

  // Revocation before validity times, as in OpenSSL's verify_chain (check_revocation precedes internal_verify).
  if (material.crl) {
    const crlCheck = checkCrl(material.crl, issuer, at);
    if (!crlCheck.ok) return refuse('crl-invalid', crlCheck.detail);
    const entry = crlCheck.crl.entries.find((e) => normaliseSerial(e.serialNumber) === serial);
    if (entry) {
      const why = entry.reason !== undefined ? `, reason ${x509.X509CrlReason[entry.reason]}` : '';
      return refuse('revoked', `certificate of ${identity.organisation} as ${identity.role} (serial ${serial}) was revoked on ${entry.revocationDate.toISOString()}${why}`);
    }
  }

  const issuerCert = new x509.X509Certificate(issuer.raw);
  const times: Array<[string, Date, Date]> = [
    [`the federation CA certificate ${oneLine(issuer.subject)}`, issuerCert.notBefore, issuerCert.notAfter],
    [`certificate of ${identity.organisation} as ${identity.role} (serial ${serial})`, identity.notBefore, identity.notAfter],
  ];
  for (const [what, from, to] of times) {
    if (at.getTime() < from.getTime()) {
      return refuse('not-yet-valid', `${what} is not valid before ${from.toISOString()} (checked at ${at.toISOString()})`);
    }
    if (at.getTime() > to.getTime()) {
      return refuse('expired', `${what} expired on ${to.toISOString()} (checked at ${at.toISOString()})`);
    }
  }
  return { ok: true, identity };
}

// TLS material

type CrlCheck = { ok: true; crl: x509.X509Crl } | { ok: false; detail: string };

/** Find the CRL issued by `issuer` in a PEM bundle and check its signature and validity at `at`. */
function checkCrl(crlBytes: Buffer, issuer: NodeX509Certificate, at: Date): CrlCheck {
  const found = checkCrlIssuer(crlBytes, [issuer]);
  if (!found.ok) return found;
  const { crl, der } = found;
  if (at.getTime() < crl.thisUpdate.getTime()) {
    return { ok: false, detail: `the CRL is not valid before ${crl.thisUpdate.toISOString()} (checked at ${at.toISOString()})` };
  }
  if (crl.nextUpdate && at.getTime() > crl.nextUpdate.getTime()) {
    return {
      ok: false,
      detail: `the CRL expired on ${crl.nextUpdate.toISOString()} (checked at ${at.toISOString()}); re-sign it with \`fedcredit pki refresh-crl\``,
    };
  }
  let list: CertificateList;
  try {
    list = AsnConvert.parse(der, CertificateList);
  } catch (err) {
    return { ok: false, detail: `the CRL cannot be parsed: ${(err as Error).message}` };
  }
  const hash = CRL_SIGNATURE_HASHES[list.signatureAlgorithm.algorithm];
  if (!hash || !list.tbsCertListRaw) {
    return { ok: false, detail: `the CRL is signed with an unsupported algorithm ${list.signatureAlgorithm.algorithm}` };
  }
  const signatureOk = cryptoVerify(hash, Buffer.from(list.tbsCertListRaw), issuer.publicKey, Buffer.from(list.signature));
  if (!signatureOk) return { ok: false, detail: `the CRL's signature does not verify with the key of ${oneLine(issuer.subject)}` };
  return { ok: true, crl };
}

export function checkCrlIssuer(crlBytes: Buffer, caCerts: NodeX509Certificate[]): { ok: true; crl: x509.X509Crl; der: ArrayBuffer } | { ok: false; detail: string } {
  let ders: ArrayBuffer[];
  const text = crlBytes.toString('latin1');
  if (text.includes('-----BEGIN')) {
    ders = x509.PemConverter.decodeWithHeaders(text)
      .filter((p) => p.type === 'X509 CRL' || p.type === 'CRL')
      .map((p) => p.rawData);
  } else {
    ders = [crlBytes.buffer.slice(crlBytes.byteOffset, crlBytes.byteOffset + crlBytes.byteLength) as ArrayBuffer];
  }
  if (ders.length === 0) return { ok: false, detail: 'no CRL found (expected a "-----BEGIN X509 CRL-----" block)' };
  const crls: Array<{ crl: x509.X509Crl; der: ArrayBuffer }> = [];
  for (const der of ders) {
    try {
      crls.push({ crl: new x509.X509Crl(der), der });
    } catch (err) {
      return { ok: false, detail: `the CRL cannot be parsed: ${(err as Error).message}` };
    }
  }
  for (const ca of caCerts) {
    const caName = new x509.X509Certificate(ca.raw).subjectName.toArrayBuffer();
    const match = crls.find(({ crl }) => Buffer.from(crl.issuerName.toArrayBuffer()).equals(Buffer.from(caName)));
    if (match) return { ok: true, ...match };
  }
  return {
    ok: false,
    detail: `no CRL issued by the CA (CRL issuer${crls.length > 1 ? 's' : ''}: ${crls.map(({ crl }) => crl.issuer).join(' / ')}; CA: ${caCerts.map((c) => oneLine(c.subject)).join(' / ')})`,
  };
}

export function parseCaBundle(ca: Buffer, source: string): NodeX509Certificate[] {
  const text = ca.toString('latin1');
  const certs: NodeX509Certificate[] = [];
  try {
    if (text.includes('-----BEGIN')) {
      for (const block of x509.PemConverter.decodeWithHeaders(text)) {
        if (block.type === 'CERTIFICATE') certs.push(new NodeX509Certificate(Buffer.from(block.rawData)));
      }
    } else {
      certs.push(new NodeX509Certificate(ca));
    }
  } catch (err) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `${source} holds an unreadable certificate: ${(err as Error).message}`,
      'use the ca.pem written by `fedcredit pki init` (each issued folder has a copy)',
    );
  }
  if (certs.length === 0) {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `${source} holds no PEM certificate`, 'use the ca.pem written by `fedcredit pki init` (each issued folder has a copy)');
  }
  return certs;
}

export function parseNodeCert(input: string | Buffer): NodeX509Certificate {
  try {
    return new NodeX509Certificate(input);
  } catch (err) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `not an X.509 certificate (PEM or DER): ${(err as Error).message}`,
      'pass the PEM certificate written by `fedcredit pki issue`, or the DER bytes of a TLS peer certificate',
    );
  }
}

export function safeVerify(cert: NodeX509Certificate, issuer: NodeX509Certificate): boolean {
  try {
    return cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}
