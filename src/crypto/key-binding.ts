/**
 * Keys bound to identities. Every key a party hands to another through the coordinator (a per-job X25519 box key,
 * the lead's CKKS public key, a participant's commitment to its share of a collective key) travels with the owner's certificate and the owner's signature, made with its
 * certificate key, over a statement naming what the key is for, the job, the digest of the job's spec (which
 * names every party and its role), the owner and the key. The receiver checks the certificate against the
 * federation CA (and its revocation list) and the signature before it first uses the key, so a coordinator that
 * swaps a key for one of its own is caught before anything is sealed to it: it cannot sign for another
 * organisation without that organisation's certificate key.
 *
 * Certificates are ECDSA P-256 (src/pki/names.ts); signatures are ECDSA with SHA-256 over the statement.
 */
import { sign, verify, type KeyObject, createPrivateKey, X509Certificate } from 'node:crypto';
import { ErrorCode, FedcreditError } from '../errors.js';
import { verifyPeer } from '../pki/verifier.js';
import { hex, sha256, sha256Hex } from '../bytes.js';

/** A key bound to its owner: its certificate (PEM) and its signature over the statement below. */
export interface KeyBinding {
  certificate: Uint8Array;
  signature: Uint8Array;
  /** The spec digest of the statement, so that a receiver offered another spec names it (absent from older nodes). */
  specSha256?: Uint8Array;
}

/** What a bound key is for: part of the statement, so a signature for one purpose never serves another. */
export type BindingPurpose = 'box-key' | 'ckks-public-key' | 'ckks-key-share';

/** The statement an owner signs for one key of one job. */
export interface BindingStatement {
  purpose: BindingPurpose;
  jobId: string;
  /** SHA-256 of the job's spec JSON as the coordinator offered it: every party signs the same job. */
  specSha256: Uint8Array;
  organisation: string;
  key: Uint8Array;
}

/** A node's certificate and private key (PEM), as its transport holds them. */
export interface BindingSigner {
  certificate: Buffer;
  key: Buffer;
}

/** The federation CA (and revocation list) a node checks its peers' certificates against. */
export interface BindingTrust {
  ca: Buffer;
  crl?: Buffer;
}

/**
 * What a party of one job binds its keys with and checks its peers' keys against: its certificate and key, the
 * federation CA, the digest of the job's spec as offered to it, and the parties that spec names (the guest or the
 * lead first). Absent with --insecure, where nothing is authenticated.
 */
export interface JobBinding {
  signer: BindingSigner;
  trust: BindingTrust;
  specSha256: Uint8Array;
  parties: string[];
}

const DOMAIN = 'fedcredit key binding v1';

export function specDigest(specJson: string): Uint8Array {
  return sha256(specJson);
}

/** Length-prefixed fields, so no two statements share bytes. */
function statementBytes(s: BindingStatement): Buffer {
  const fields = [DOMAIN, s.purpose, s.jobId, hex(s.specSha256), s.organisation, sha256Hex(s.key)];
  return Buffer.concat(
    fields.map((f) => {
      const bytes = Buffer.from(f);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return Buffer.concat([length, bytes]);
    }),
  );
}

const signingKeys = new WeakMap<Buffer, KeyObject>();

export function signBinding(signer: BindingSigner, statement: BindingStatement): KeyBinding {
  let key = signingKeys.get(signer.key);
  if (!key) {
    key = createPrivateKey(signer.key);
    signingKeys.set(signer.key, key);
  }
  return { certificate: signer.certificate, signature: sign('sha256', statementBytes(statement), key), specSha256: statement.specSha256 };
}

/**
 * Check that `binding` binds `statement.key` to `statement.organisation` for this job and purpose: the certificate
 * is a participant's, issued by the federation CA, not revoked, within its validity, names that organisation, and
 * signed the statement. Throws FC_KEY_BINDING naming the party and the check that failed.
 */
export function verifyBinding(
  binding: KeyBinding | null | undefined,
  statement: BindingStatement,
  trust: BindingTrust,
  what = `${statement.organisation}'s ${{ 'box-key': 'per-job box key', 'ckks-public-key': 'CKKS public key', 'ckks-key-share': 'commitment to its CKKS key share' }[statement.purpose]}`,
): void {
  const fail = (
    check: string,
    hint = "the coordinator relayed a key that its owner did not sign (a swapped or altered key). Stop using this coordinator for the job and tell the federation operator; the refusal is in this node's log",
  ) =>
    new FedcreditError(
      ErrorCode.KEY_BINDING,
      `${what} in job ${statement.jobId} is not bound to ${statement.organisation}'s certificate: ${check}; nothing was sealed to it or encrypted under it`,
      hint,
    );
  if (!binding || binding.certificate.length === 0 || binding.signature.length === 0) throw fail('it carries no certificate or signature');
  const verdict = verifyPeer(Buffer.from(binding.certificate), trust);
  if (!verdict.ok) throw fail(`its certificate is refused (${verdict.reason}: ${verdict.detail})`);
  if (verdict.identity.organisation !== statement.organisation) throw fail(`the certificate is ${verdict.identity.organisation}'s, not ${statement.organisation}'s`);
  if (verdict.identity.role !== 'participant') throw fail(`the certificate is for the role ${verdict.identity.role}, not participant`);
  const publicKey = new X509Certificate(Buffer.from(binding.certificate)).publicKey;
  const signs = (s: BindingStatement) => {
    try {
      return verify('sha256', statementBytes(s), publicKey, Buffer.from(binding.signature));
    } catch {
      return false;
    }
  };
  if (signs(statement)) return;
  // The digest the binding names is unsigned: an equivocation is named only when the owner's signature covers it.
  const signedFor = binding.specSha256 ?? new Uint8Array();
  if (signedFor.length > 0 && !Buffer.from(signedFor).equals(Buffer.from(statement.specSha256)) && signs({ ...statement, specSha256: signedFor }))
    throw fail(
      `${statement.organisation} signed it for the job's spec with SHA-256 ${hex(signedFor)}, and this node accepted the spec with SHA-256 ${hex(statement.specSha256)}`,
      "the coordinator offered the parties different specs of one job (equivocation). Stop using this coordinator for the job and tell the federation operator; the refusal is in this node's log",
    );
  throw fail('the signature does not match the key, the job or its parties');
}
