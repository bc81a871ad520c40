/**
 * The federation PKI's promises: a CA and certificates for every role whose identity reads back; certificates that
 * Node/OpenSSL accept as issued by the CA; a CRL that OpenSSL reads; verifyPeer gives the reason a handshake would
 * fail for; private keys are private; and, end to end, a real mutual-TLS handshake with the coordinator's files
 * accepts a valid participant and refuses revoked, expired, foreign and self-signed clients.
 */
import 'reflect-metadata'; // before @peculiar/x509 (see src/pki/x509.ts)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as x509 from '@peculiar/x509';
import { KeyObject, X509Certificate, createPrivateKey, webcrypto } from 'node:crypto';
import { readFileSync, statSync, existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { ErrorCode, FedcreditError } from '../src/errors.js';
import { ROLES, type Role } from '../src/pki/names.js';
import { initCa, issueCertificate, listIssued, refreshCrl, revokeCertificate, signCertificateRequest } from '../src/pki/ca.js';
import { loadTlsMaterial, requestCertificate, type TlsMaterial } from '../src/pki/identity.js';
import { readIdentity, verifyPeer } from '../src/pki/verifier.js';

const made: string[] = [];
async function tempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `fedcredit-pki-${name}-`));
  made.push(dir);
  return dir;
}
afterAll(async () => {
  if (!process.env.FEDCREDIT_KEEP_TEST_DIRS) await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
});

/** Resolve to the FedcreditError a promise (or function) throws. */
async function caught(fn: () => unknown): Promise<FedcreditError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FedcreditError);
    return err as FedcreditError;
  }
  throw new Error('expected a FedcreditError, nothing was thrown');
}

const DAY = 86_400_000;
const mode = (file: string) => statSync(file).mode & 0o777;
const pem = (file: string) => readFileSync(file, 'utf8');

let caDir: string;
let otherCaDir: string;
type Issued = { certFile: string; keyFile: string; caFile: string; serial: string };
const issued = {} as Record<Role, Issued>;
let foreign: Issued; // a participant certificate from another CA
let expired: Issued;
let selfSignedPem: string;
let selfSignedKeyPem: string;

beforeAll(async () => {
  caDir = join(await tempDir('ca'), 'federation-ca'); // initCa creates the folder
  await initCa(caDir, { name: 'test federation CA' });
  for (const role of ROLES) {
    issued[role] = await issueCertificate(caDir, {
      organisation: role === 'coordinator' ? 'central' : `bank-${role}`,
      role,
      ...(role === 'coordinator' ? { hosts: ['coord.example.org', '10.0.0.5'] } : {}),
    });
  }
  const now = Date.now();
  expired = await issueCertificate(caDir, {
    organisation: 'bank-old',
    role: 'participant',
    notBefore: new Date(now - 10 * DAY),
    notAfter: new Date(now - DAY),
  });

  otherCaDir = await tempDir('other-ca');
  await initCa(otherCaDir, { name: 'test federation CA' }); // same name on purpose: only the key tells them apart
  foreign = await issueCertificate(otherCaDir, { organisation: 'bank-participant', role: 'participant' });

  // A self-signed certificate that copies a participant's identity.
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const self = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=bank-participant, O=bank-participant, OU=participant',
    keys,
    signingAlgorithm: alg,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 30 * DAY),
    extensions: [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'url', value: 'urn:fedcredit:org:bank-participant' },
        { type: 'url', value: 'urn:fedcredit:role:participant' },
      ]),
    ],
  });
  selfSignedPem = self.toString('pem');
  selfSignedKeyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string;
});

describe('CA', () => {
  it('writes ca.pem, ca-key.pem (0600), crl.pem and issued.json', () => {
    for (const f of ['ca.pem', 'ca-key.pem', 'crl.pem', 'issued.json']) expect(existsSync(join(caDir, f)), f).toBe(true);
    expect(mode(join(caDir, 'ca-key.pem'))).toBe(0o600);
    expect(pem(join(caDir, 'ca-key.pem'))).toContain('-----BEGIN PRIVATE KEY-----'); // PKCS#8
  });

  it('is a CA with pathlen 0, keyCertSign + cRLSign, ECDSA P-256 / SHA-256', () => {
    const ca = new x509.X509Certificate(pem(join(caDir, 'ca.pem')));
    const bc = ca.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.ca).toBe(true);
    expect(bc.pathLength).toBe(0);
    expect(bc.critical).toBe(true);
    const ku = ca.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(ca.subject).toBe('CN=test federation CA');
    const node = new X509Certificate(pem(join(caDir, 'ca.pem')));
    expect(node.ca).toBe(true);
    expect(node.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(ca.signatureAlgorithm).toMatchObject({ name: 'ECDSA', hash: { name: 'SHA-256' } });
    expect(node.verify(node.publicKey)).toBe(true);
  });

  it('refuses to initialise a folder that already holds a CA, naming the folder', async () => {
    const err = await caught(() => initCa(caDir));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toContain(caDir);
    expect(err.message).toContain('already exists');
    expect(err.hint).toMatch(/another folder/);
    // and it did not touch the existing CA
    expect(() => new X509Certificate(pem(join(caDir, 'ca.pem')))).not.toThrow();
  });
});

describe('issued certificates', () => {
  it('reads back organisation and role for every role, from PEM string, PEM Buffer and DER Buffer', () => {
    for (const role of ROLES) {
      const certPem = pem(issued[role].certFile);
      const organisation = role === 'coordinator' ? 'central' : `bank-${role}`;
      const der = new X509Certificate(certPem).raw;
      for (const input of [certPem, Buffer.from(certPem), der]) {
        const id = readIdentity(input);
        expect(id).toMatchObject({ organisation, role, serial: issued[role].serial });
        expect(id.fingerprint256).toBe(new X509Certificate(certPem).fingerprint256);
        expect(id.notAfter.getTime()).toBeGreaterThan(Date.now() + 300 * DAY);
        expect(id.notBefore.getTime()).toBeLessThanOrEqual(Date.now());
      }
      const node = new X509Certificate(certPem);
      expect(node.subject).toBe(`CN=${organisation}\nO=${organisation}\nOU=${role}`);
      expect(node.subjectAltName).toContain(`URI:urn:fedcredit:role:${role}`);
      expect(node.subjectAltName).toContain(`URI:urn:fedcredit:org:${organisation}`);
      expect(node.serialNumber).toBe(issued[role].serial);
      expect(node.ca).toBe(false);
    }
  });

  it('verify against the CA with Node: checkIssued and the signature', () => {
    const ca = new X509Certificate(pem(join(caDir, 'ca.pem')));
    const otherCa = new X509Certificate(pem(join(otherCaDir, 'ca.pem')));
    for (const role of ROLES) {
      const cert = new X509Certificate(pem(issued[role].certFile));
      expect(cert.checkIssued(ca), role).toBe(true);
      expect(cert.verify(ca.publicKey), role).toBe(true);
      expect(cert.verify(otherCa.publicKey), role).toBe(false); // same CA name, different key
      expect(cert.checkPrivateKey(createPrivateKey(readFileSync(issued[role].keyFile))), role).toBe(true);
    }
    expect(new X509Certificate(pem(foreign.certFile)).verify(ca.publicKey)).toBe(false);
  });

  it('gives the coordinator a TLS server certificate and the others client certificates', () => {
    const coord = new X509Certificate(pem(issued.coordinator.certFile));
    expect(coord.keyUsage.sort()).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']); // Node: extended key usage
    expect(coord.checkHost('localhost')).toBe('localhost');
    expect(coord.checkHost('coord.example.org')).toBe('coord.example.org');
    expect(coord.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(coord.checkIP('10.0.0.5')).toBe('10.0.0.5');
    expect(coord.checkHost('evil.example.org')).toBeUndefined();
    for (const role of ['participant', 'submitter', 'auditor'] as const) {
      const cert = new X509Certificate(pem(issued[role].certFile));
      expect(cert.keyUsage, role).toEqual(['1.3.6.1.5.5.7.3.2']);
      expect(cert.checkHost('localhost'), role).toBeUndefined();
      const ku = new x509.X509Certificate(pem(issued[role].certFile)).getExtension(x509.KeyUsagesExtension)!;
      expect(ku.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    }
  });

  it('writes key.pem with mode 0600 and a copy of ca.pem next to cert.pem, under issued/<org>-<role>', () => {
    for (const role of ROLES) {
      const { certFile, keyFile, caFile } = issued[role];
      expect(mode(keyFile), keyFile).toBe(0o600);
      expect(pem(caFile)).toBe(pem(join(caDir, 'ca.pem')));
      const organisation = role === 'coordinator' ? 'central' : `bank-${role}`;
      expect(certFile).toBe(join(caDir, 'issued', `${organisation}-${role}`, 'cert.pem'));
    }
  });

  it('records every certificate in issued.json', async () => {
    const list = await listIssued(caDir);
    const fromFile = JSON.parse(pem(join(caDir, 'issued.json'))).certificates;
    expect(fromFile).toEqual(list);
    for (const role of ROLES) {
      const entry = list.find((c) => c.serial === issued[role].serial)!;
      expect(entry).toMatchObject({ role, organisation: role === 'coordinator' ? 'central' : `bank-${role}` });
      expect(new Date(entry.notAfter).getTime()).toBe(readIdentity(pem(issued[role].certFile)).notAfter.getTime());
    }
    expect(list.find((c) => c.serial === expired.serial)?.notAfter).toBe(readIdentity(pem(expired.certFile)).notAfter.toISOString());
  });

  it('validates organisation names, roles and hosts with clear errors', async () => {
    for (const organisation of ['Bank_A', '-bank', '', 'a'.repeat(64), 'bank a']) {
      const err = await caught(() => issueCertificate(caDir, { organisation, role: 'participant' }));
      expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
      expect(err.message).toContain('invalid organisation name');
      expect(err.message).toContain('^[a-z0-9][a-z0-9-]{0,62}$');
    }
    expect((await caught(() => issueCertificate(caDir, { organisation: 'x', role: 'admin' as Role }))).message).toContain('invalid role');
    expect((await caught(() => issueCertificate(caDir, { organisation: 'x', role: 'participant', hosts: ['a.b'] }))).message).toContain('only the coordinator');
    expect((await caught(() => issueCertificate(caDir, { organisation: 'x', role: 'coordinator', hosts: ['http://a.b:1'] }))).message).toContain('invalid host');
  });

  it('refuses to overwrite a folder holding a live certificate', async () => {
    const err = await caught(() => issueCertificate(caDir, { organisation: 'bank-participant', role: 'participant' }));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toContain(issued.participant.certFile);
    expect(err.hint).toContain('fedcredit pki revoke');
  });

  it('refuses when the folder holds no CA', async () => {
    const empty = await tempDir('empty');
    const err = await caught(() => issueCertificate(empty, { organisation: 'bank-a', role: 'participant' }));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toContain(empty);
    expect(err.hint).toContain('fedcredit pki init');
  });

  it('readIdentity refuses a certificate without a fedcredit role, saying so', () => {
    const err = (() => {
      try {
        readIdentity(pem(join(caDir, 'ca.pem')));
      } catch (e) {
        return e as FedcreditError;
      }
      throw new Error('no error');
    })();
    expect(err).toBeInstanceOf(FedcreditError);
    expect(err.message).toMatch(/carries no fedcredit organisation/);
    expect(() => readIdentity(Buffer.from('not a certificate'))).toThrow(/not an X\.509 certificate/);
  });
});

describe('enrolment by certificate signing request: the key never leaves its owner', () => {
  it('request makes the key and CSR at the organisation; sign issues a certificate that loads with that key', async () => {
    const home = join(await tempDir('enrol'), 'tax-bureau-participant');
    const request = await requestCertificate(home, { organisation: 'tax-bureau', role: 'participant' });
    expect(mode(request.keyFile)).toBe(0o600);
    expect(mode(home)).toBe(0o700);
    expect(pem(request.csrFile)).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    expect(pem(request.csrFile)).not.toMatch(/PRIVATE KEY/);
    const signed = await signCertificateRequest(caDir, pem(request.csrFile), { expect: { organisation: 'tax-bureau', role: 'participant' } });
    expect(signed).toMatchObject({ organisation: 'tax-bureau', role: 'participant' });
    expect(existsSync(join(signed.certFile, '..', 'key.pem'))).toBe(false);
    // The organisation puts cert.pem and ca.pem beside its key: the identity folder is complete and consistent.
    writeFileSync(join(home, 'cert.pem'), pem(signed.certFile));
    writeFileSync(join(home, 'ca.pem'), pem(signed.caFile));
    const material = loadTlsMaterial({ ca: join(home, 'ca.pem'), cert: join(home, 'cert.pem'), key: join(home, 'key.pem') });
    expect(readIdentity(material.cert)).toMatchObject({ organisation: 'tax-bureau', role: 'participant' });
    const verdict = verifyPeer(material.cert, { ca: material.ca });
    expect(verdict.ok).toBe(true);
    expect((await listIssued(caDir)).some((c) => c.serial === signed.serial && c.organisation === 'tax-bureau')).toBe(true);
  });

  it('refuses a request for another organisation or role than the operator expects, an altered one, and garbage', async () => {
    const home = join(await tempDir('enrol-bad'), 'platform-submitter');
    const request = await requestCertificate(home, { organisation: 'platform', role: 'submitter' });
    const csr = pem(request.csrFile);
    expect((await caught(() => signCertificateRequest(caDir, csr, { expect: { role: 'participant' } }))).message).toMatch(/is for role submitter, not participant as the CA operator expected/);
    expect((await caught(() => signCertificateRequest(caDir, csr, { expect: { organisation: 'bank' } }))).message).toMatch(/is for organisation platform, not bank/);
    // One byte of the signed part changed: the request no longer matches its own signature.
    const der = Buffer.from(csr.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    der[40]! ^= 1;
    const altered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect((await caught(() => signCertificateRequest(caDir, altered))).message).toMatch(/the certificate request (is not signed by the key it carries|is not a PEM PKCS#10 request|names)/);
    expect((await caught(() => signCertificateRequest(caDir, 'hello'))).message).toMatch(/is not a PEM PKCS#10 request/);
    expect((await caught(() => requestCertificate(home, { organisation: 'platform', role: 'submitter' }))).message).toMatch(/key.pem already exists/);
  });
});

describe('verifyPeer', () => {
  const material = () => ({ ca: readFileSync(join(caDir, 'ca.pem')), crl: readFileSync(join(caDir, 'crl.pem')) });

  it('accepts valid certificates of every role and returns the identity', () => {
    for (const role of ROLES) {
      const verdict = verifyPeer(readFileSync(issued[role].certFile), material());
      expect(verdict.ok, JSON.stringify(verdict)).toBe(true);
      if (verdict.ok) expect(verdict.identity).toMatchObject({ role, serial: issued[role].serial });
    }
  });

  it('refuses an expired certificate', () => {
    const verdict = verifyPeer(pem(expired.certFile), material());
    expect(verdict).toMatchObject({ ok: false, reason: 'expired' });
    if (!verdict.ok) expect(verdict.detail).toContain('bank-old');
  });

  it('refuses by date: expired after notAfter, not yet valid before notBefore', () => {
    const certPem = pem(issued.participant.certFile);
    expect(verifyPeer(certPem, { ca: material().ca }, new Date(Date.now() + 400 * DAY))).toMatchObject({ ok: false, reason: 'expired' });
    expect(verifyPeer(certPem, { ca: material().ca }, new Date(Date.now() - DAY))).toMatchObject({ ok: false, reason: 'not-yet-valid' });
  });

  it('refuses a certificate from another CA (even one with the same name)', () => {
    const verdict = verifyPeer(pem(foreign.certFile), material());
    expect(verdict).toMatchObject({ ok: false, reason: 'wrong-ca' });
    if (!verdict.ok) expect(verdict.detail).toMatch(/not signed by the federation CA's key/);
  });

  it('refuses a self-signed certificate, and the CA certificate presented as a peer', () => {
    expect(verifyPeer(selfSignedPem, material())).toMatchObject({ ok: false, reason: 'self-signed' });
    const asPeer = verifyPeer(pem(join(caDir, 'ca.pem')), material());
    expect(asPeer).toMatchObject({ ok: false, reason: 'self-signed' });
    if (!asPeer.ok) expect(asPeer.detail).toContain('CA certificate itself');
  });

  it('refuses garbage as malformed', () => {
    expect(verifyPeer(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]), material())).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('refuses everything once the CRL has expired (as OpenSSL does)', () => {
    const verdict = verifyPeer(pem(issued.participant.certFile), material(), new Date(Date.now() + 8 * DAY));
    expect(verdict).toMatchObject({ ok: false, reason: 'crl-invalid' });
    if (!verdict.ok) expect(verdict.detail).toMatch(/CRL expired/);
    // a CRL from another CA is not a CRL for this one
    const wrongCrl = { ca: material().ca, crl: readFileSync(join(otherCaDir, 'crl.pem')) };
    expect(verifyPeer(pem(issued.participant.certFile), wrongCrl)).toMatchObject({ ok: false, reason: 'crl-invalid' });
  });
});

describe('revocation', () => {
  let revokedCert: Issued;
  beforeAll(async () => {
    revokedCert = await issueCertificate(caDir, { organisation: 'bank-gone', role: 'submitter' });
  });

  it('revokes by organisation and role, rewrites the CRL, and verifyPeer then refuses the certificate', async () => {
    const before = new x509.X509Crl(pem(join(caDir, 'crl.pem')));
    expect(verifyPeer(pem(revokedCert.certFile), { ca: readFileSync(join(caDir, 'ca.pem')), crl: readFileSync(join(caDir, 'crl.pem')) }).ok).toBe(true);

    const result = await revokeCertificate(caDir, { organisation: 'bank-gone', role: 'submitter' });
    expect(result).toEqual({ revoked: [revokedCert.serial], alreadyRevoked: [] });

    const crlPem = pem(join(caDir, 'crl.pem'));
    expect(crlPem).toMatch(/^-----BEGIN X509 CRL-----\n/);
    const crl = new x509.X509Crl(crlPem);
    expect(crl.entries.map((e) => e.serialNumber.toUpperCase())).toContain(revokedCert.serial);
    expect(await crl.verify({ publicKey: new x509.X509Certificate(pem(join(caDir, 'ca.pem'))) })).toBe(true);
    expect(crl.issuer).toBe('CN=test federation CA');
    const now = Date.now();
    expect(crl.thisUpdate.getTime()).toBeLessThanOrEqual(now);
    expect(crl.thisUpdate.getTime()).toBeGreaterThan(now - 10 * 60_000);
    expect(crl.nextUpdate!.getTime() - now).toBeGreaterThan(7 * DAY - 60_000);
    expect(crl.nextUpdate!.getTime() - now).toBeLessThanOrEqual(7 * DAY);
    const number = (c: x509.X509Crl) => Buffer.from(c.getExtension('2.5.29.20')!.value).readUIntBE(2, Buffer.from(c.getExtension('2.5.29.20')!.value)[1]!);
    expect(number(crl)).toBe(number(before) + 1);
    expect(crl.entries.find((e) => e.serialNumber.toUpperCase() === revokedCert.serial)?.reason).toBe(x509.X509CrlReason.privilegeWithdrawn);

    const verdict = verifyPeer(pem(revokedCert.certFile), { ca: readFileSync(join(caDir, 'ca.pem')), crl: Buffer.from(crlPem) });
    expect(verdict).toMatchObject({ ok: false, reason: 'revoked' });
    if (!verdict.ok) expect(verdict.detail).toContain(revokedCert.serial);
    // without a CRL nothing says it is revoked
    expect(verifyPeer(pem(revokedCert.certFile), { ca: readFileSync(join(caDir, 'ca.pem')) }).ok).toBe(true);

    const entry = (await listIssued(caDir)).find((c) => c.serial === revokedCert.serial)!;
    expect(entry.revoked?.reason).toBe('privilegeWithdrawn');
  });

  it('is idempotent, accepts a serial in any case, and reports unknown selectors as NOT_FOUND', async () => {
    expect(await revokeCertificate(caDir, { serial: revokedCert.serial.toLowerCase() })).toEqual({
      revoked: [],
      alreadyRevoked: [revokedCert.serial],
    });
    const err = await caught(() => revokeCertificate(caDir, { organisation: 'nobody' }));
    expect(err.code).toBe(ErrorCode.NOT_FOUND);
    expect(err.message).toContain('nobody');
  });

  it('lets a revoked certificate be replaced in the same folder', async () => {
    const again = await issueCertificate(caDir, { organisation: 'bank-gone', role: 'submitter' });
    expect(again.certFile).toBe(revokedCert.certFile);
    expect(again.serial).not.toBe(revokedCert.serial);
    revokedCert = { ...revokedCert, serial: again.serial }; // keep the bookkeeping honest for later tests
    await revokeCertificate(caDir, { serial: again.serial });
  });

  it('refreshCrl re-signs with the next number and a new nextUpdate, keeping the revoked serials', async () => {
    const before = new x509.X509Crl(pem(join(caDir, 'crl.pem')));
    const refreshed = await refreshCrl(caDir, { crlValidityDays: 2 });
    const after = new x509.X509Crl(pem(refreshed.crlFile));
    expect(after.entries.map((e) => e.serialNumber)).toEqual(before.entries.map((e) => e.serialNumber));
    expect(refreshed.nextUpdate.getTime() - Date.now()).toBeLessThanOrEqual(2 * DAY);
    expect(refreshed.crlNumber).toBeGreaterThan(1);
  });
});

describe('loadTlsMaterial', () => {
  it('loads matching files', () => {
    const { certFile, keyFile, caFile } = issued.participant;
    const m = loadTlsMaterial({ ca: caFile, cert: certFile, key: keyFile, crl: join(caDir, 'crl.pem') });
    expect(m.cert.equals(readFileSync(certFile))).toBe(true);
    expect(m.crl?.toString()).toContain('BEGIN X509 CRL');
  });

  it('names a missing file and the fix', async () => {
    const missing = join(caDir, 'nope', 'cert.pem');
    const err = await caught(() => loadTlsMaterial({ ca: issued.participant.caFile, cert: missing, key: issued.participant.keyFile }));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toContain(missing);
    expect(err.message).toContain('does not exist');
    expect(err.hint).toContain('fedcredit pki issue');
  });

  it('names swapped or mismatched files', async () => {
    const p = issued.participant;
    expect((await caught(() => loadTlsMaterial({ ca: p.caFile, cert: p.certFile, key: p.certFile }))).message).toMatch(/swapped/);
    expect((await caught(() => loadTlsMaterial({ ca: p.caFile, cert: p.certFile, key: issued.auditor.keyFile }))).message).toContain('is not the private key of');
    expect((await caught(() => loadTlsMaterial({ ca: p.caFile, cert: foreign.certFile, key: foreign.keyFile }))).message).toContain('was not issued by the CA');
    const bogusCrl = join(await tempDir('bogus'), 'crl.pem');
    writeFileSync(bogusCrl, 'hello');
    expect((await caught(() => loadTlsMaterial({ ca: p.caFile, cert: p.certFile, key: p.keyFile, crl: bogusCrl }))).message).toContain('not a PEM CRL');
  });
});

describe('mutual TLS with OpenSSL (node:tls), the way gRPC uses the files', () => {
  // `strict` is configured as the coordinator's gRPC server will be: requestCert + rejectUnauthorized, ca and crl.
  // Node destroys a refused connection without saying why, so `diag` (same files, rejectUnauthorized: false) answers
  // with OpenSSL's verification result, to show that OpenSSL's reason is the one verifyPeer gives.
  let strict: tls.Server;
  let diag: tls.Server;
  let serverMaterial: TlsMaterial;
  const port = (s: tls.Server) => (s.address() as AddressInfo).port;
  const contextOf = (m: TlsMaterial): tls.SecureContextOptions => ({ ca: m.ca, cert: m.cert, key: m.key, crl: m.crl });
  const loadCoordinator = () =>
    loadTlsMaterial({
      ca: issued.coordinator.caFile,
      cert: issued.coordinator.certFile,
      key: issued.coordinator.keyFile,
      crl: join(caDir, 'crl.pem'),
    });

  beforeAll(async () => {
    serverMaterial = loadCoordinator();
    strict = tls.createServer({ ...contextOf(serverMaterial), requestCert: true, rejectUnauthorized: true }, (socket) => {
      const id = readIdentity(socket.getPeerCertificate().raw);
      socket.end(`hello ${id.organisation} as ${id.role}`);
    });
    diag = tls.createServer({ ...contextOf(serverMaterial), requestCert: true, rejectUnauthorized: false }, (socket) => {
      socket.end(socket.authorized ? 'AUTHORIZED' : String(socket.authorizationError));
    });
    await Promise.all([strict, diag].map((s) => new Promise<void>((res) => s.listen(0, '127.0.0.1', res))));
  });
  afterAll(async () => {
    await Promise.all([strict, diag].map((s) => new Promise<void>((res) => s.close(() => res()))));
  });
  const reload = () => {
    serverMaterial = loadCoordinator();
    for (const s of [strict, diag]) s.setSecureContext(contextOf(serverMaterial));
  };

  type Outcome = { accepted: boolean; got: string; error?: string };
  /** Connect with a client certificate; `accepted` is whether the strict server let the connection through. */
  async function connect(
    server: tls.Server,
    client: { cert: Buffer | string; key: Buffer | string },
    { servername = 'localhost' as string | undefined, ca = serverMaterial.ca } = {},
  ): Promise<Outcome> {
    let accepted = false;
    const onSecure = () => (accepted = true);
    server.on('secureConnection', onSecure);
    try {
      const { got, error } = await new Promise<{ got: string; error?: string }>((res) => {
        let got = '';
        let error: string | undefined;
        const socket = tls.connect({
          host: '127.0.0.1',
          port: port(server),
          ...(servername ? { servername } : {}),
          ca,
          cert: client.cert,
          key: client.key,
        });
        socket.on('data', (d) => (got += d.toString()));
        socket.on('error', (e) => (error = e.message));
        socket.on('close', () => res({ got, error }));
      });
      return { accepted, got, error };
    } finally {
      server.off('secureConnection', onSecure);
    }
  }
  const filesOf = (i: Issued) => ({ cert: readFileSync(i.certFile), key: readFileSync(i.keyFile) });
  /** The strict server refuses (no secure connection, not a byte sent), OpenSSL says why, and verifyPeer agrees. */
  async function expectRefused(client: { cert: Buffer | string; key: Buffer | string }, opensslCode: RegExp, reason: string) {
    const out = await connect(strict, client);
    expect(out.accepted).toBe(false);
    expect(out.got).toBe(''); // the server closes the connection (TLS 1.3: after the client's Finished) without a byte
    const why = await connect(diag, client);
    expect(why.got).toMatch(opensslCode);
    expect(verifyPeer(client.cert, { ca: serverMaterial.ca, crl: serverMaterial.crl })).toMatchObject({ ok: false, reason });
  }

  it('accepts a valid participant (server name localhost, and by IP 127.0.0.1)', async () => {
    const byName = await connect(strict, filesOf(issued.participant));
    expect(byName.error).toBeUndefined();
    expect(byName.accepted).toBe(true);
    expect(byName.got).toBe('hello bank-participant as participant');
    expect((await connect(diag, filesOf(issued.participant))).got).toBe('AUTHORIZED');

    const byIp = await connect(strict, filesOf(issued.auditor), { servername: undefined });
    expect(byIp.error).toBeUndefined();
    expect(byIp.got).toBe('hello bank-auditor as auditor');
  });

  it('refuses an expired client certificate', async () => {
    await expectRefused(filesOf(expired), /^CERT_HAS_EXPIRED$/, 'expired');
  });

  it('refuses a client certificate from another CA', async () => {
    await expectRefused(filesOf(foreign), /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|CERT_SIGNATURE_FAILURE)$/, 'wrong-ca');
  });

  it('refuses a self-signed client certificate', async () => {
    // Node's verify callback lets OpenSSL carry on after the first error and reports the last one: with a CRL
    // configured, the missing CRL for the self-signed "issuer" (UNABLE_TO_GET_CRL) overwrites DEPTH_ZERO_SELF_SIGNED_CERT.
    await expectRefused({ cert: selfSignedPem, key: selfSignedKeyPem }, /^(DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_GET_CRL)$/, 'self-signed');
  });

  it('accepts a participant, then refuses it once it is revoked and the server reloads the CRL', async () => {
    const member = await issueCertificate(caDir, { organisation: 'bank-leaving', role: 'participant' });
    const first = await connect(strict, filesOf(member));
    expect(first.accepted).toBe(true);
    expect(first.got).toBe('hello bank-leaving as participant');

    await revokeCertificate(caDir, { organisation: 'bank-leaving' });
    reload(); // what the coordinator does when crl.pem changes: setSecureContext with the new CRL

    await expectRefused(filesOf(member), /^CERT_REVOKED$/, 'revoked');
    // the others still get in under the new CRL
    expect((await connect(strict, filesOf(issued.submitter))).got).toBe('hello bank-submitter as submitter');
  });

  it('refuses everyone once the CRL is past its nextUpdate (why refreshCrl exists)', async () => {
    // A second federation (the other CA), whose CRL was last signed 10 days ago with 1 day of validity.
    const coord = await issueCertificate(otherCaDir, { organisation: 'other-central', role: 'coordinator' });
    await refreshCrl(otherCaDir, { now: new Date(Date.now() - 10 * DAY), crlValidityDays: 1 });
    const material = loadTlsMaterial({ ca: coord.caFile, cert: coord.certFile, key: coord.keyFile, crl: join(otherCaDir, 'crl.pem') });
    const stale = tls.createServer({ ...contextOf(material), requestCert: true, rejectUnauthorized: false }, (socket) => {
      socket.end(socket.authorized ? 'AUTHORIZED' : String(socket.authorizationError));
    });
    await new Promise<void>((res) => stale.listen(0, '127.0.0.1', res));
    try {
      const out = await connect(stale, filesOf(foreign), { ca: material.ca });
      expect(out.got).toBe('CRL_HAS_EXPIRED');
      const verdict = verifyPeer(readFileSync(foreign.certFile), { ca: material.ca, crl: material.crl });
      expect(verdict).toMatchObject({ ok: false, reason: 'crl-invalid' });
      // re-signing fixes it
      await refreshCrl(otherCaDir);
      const fresh = readFileSync(join(otherCaDir, 'crl.pem'));
      stale.setSecureContext(contextOf({ ...material, crl: fresh }));
      expect((await connect(stale, filesOf(foreign), { ca: material.ca })).got).toBe('AUTHORIZED');
      expect(verifyPeer(readFileSync(foreign.certFile), { ca: material.ca, crl: fresh }).ok).toBe(true);
    } finally {
      await new Promise<void>((res) => stale.close(() => res()));
    }
  });

  it('a client refuses a server presenting a participant certificate (not a server certificate for the host)', async () => {
    const rogue = tls.createServer(contextOf({ ...serverMaterial, ...filesOf(issued.participant) }), (s) => s.end('hi'));
    await new Promise<void>((res) => rogue.listen(0, '127.0.0.1', res));
    const out = await connect(rogue, filesOf(issued.submitter));
    await new Promise<void>((res) => rogue.close(() => res()));
    expect(out.got).toBe('');
    expect(out.error).toMatch(/localhost|altnames|purpose/i);
  });
});
