/**
 * Raw 32-byte X25519 and Ed25519 keys to and from node:crypto KeyObjects, through DER: SubjectPublicKeyInfo and
 * PKCS#8 (RFC 8410) are a fixed prefix followed by the 32 key bytes. The one place in fedcredit where keys turn
 * into bytes or back.
 *
 * Never through JWK: on Node 20 (20.20.2 measured) exporting keys as JWK deadlocks inside Node's crypto after
 * 20,000-40,000 exports, blocking the event loop for good (issue 24; test/raw-keys-stress.test.ts); DER does not.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';

export type RawKeyCurve = 'x25519' | 'ed25519';

export const RAW_KEY_BYTES = 32;

const SPKI_PREFIX: Record<RawKeyCurve, Buffer> = {
  x25519: Buffer.from('302a300506032b656e032100', 'hex'),
  ed25519: Buffer.from('302a300506032b6570032100', 'hex'),
};

const PKCS8_PREFIX: Record<RawKeyCurve, Buffer> = {
  x25519: Buffer.from('302e020100300506032b656e04220420', 'hex'),
  ed25519: Buffer.from('302e020100300506032b657004220420', 'hex'),
};

function curveOf(key: KeyObject): RawKeyCurve {
  const type = key.asymmetricKeyType;
  if (type !== 'x25519' && type !== 'ed25519') throw new TypeError(`expected an X25519 or Ed25519 key, got a ${type ?? key.type} key`);
  return type;
}

function checkLength(raw: Uint8Array, what: string): void {
  if (raw.length !== RAW_KEY_BYTES) throw new RangeError(`${what} is ${RAW_KEY_BYTES} bytes, got ${raw.length}`);
}

/** The key bytes after `prefix` in `der`, checked to be exactly prefix + 32 bytes. */
function keyBytes(der: Buffer, prefix: Buffer, what: string): Buffer {
  if (der.length !== prefix.length + RAW_KEY_BYTES || !der.subarray(0, prefix.length).equals(prefix)) {
    throw new Error(`unexpected DER encoding of ${what} (${der.length} bytes): not the RFC 8410 layout`);
  }
  return der.subarray(prefix.length);
}

/** A public KeyObject from its raw 32 bytes (a RangeError for any other length). */
export function publicKeyFromRaw(curve: RawKeyCurve, raw: Uint8Array): KeyObject {
  checkLength(raw, `an ${curve} public key`);
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX[curve], raw]), format: 'der', type: 'spki' });
}

/** A private KeyObject from its raw 32-byte secret (for X25519, the scalar; for Ed25519, the seed). */
export function privateKeyFromRaw(curve: RawKeyCurve, raw: Uint8Array): KeyObject {
  checkLength(raw, `an ${curve} private key`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX[curve], raw]), format: 'der', type: 'pkcs8' });
}

/** The raw 32-byte public key of a public key, or of the public half of a private key. */
export function rawPublicKey(key: KeyObject): Buffer {
  const curve = curveOf(key);
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return Buffer.from(keyBytes(publicKey.export({ format: 'der', type: 'spki' }), SPKI_PREFIX[curve], `an ${curve} public key`));
}

/** The raw 32-byte secret of a private key. Secret: store it like the key. */
export function rawPrivateKey(key: KeyObject): Buffer {
  const curve = curveOf(key);
  if (key.type !== 'private') throw new TypeError(`expected a private ${curve} key, got a ${key.type} one`);
  return Buffer.from(keyBytes(key.export({ format: 'der', type: 'pkcs8' }), PKCS8_PREFIX[curve], `an ${curve} private key`));
}

/**
 * A reusable SubjectPublicKeyInfo buffer for importing many X25519 points one after another without allocating
 * (the PSI's OpenSSL path builds one key object per point).
 */
export class X25519PublicKeyReader {
  private readonly der = Buffer.alloc(SPKI_PREFIX.x25519.length + RAW_KEY_BYTES);

  constructor() {
    SPKI_PREFIX.x25519.copy(this.der);
  }

  /** The X25519 public key whose raw bytes are source[offset, offset + 32). */
  read(source: Buffer, offset: number): KeyObject {
    source.copy(this.der, SPKI_PREFIX.x25519.length, offset, offset + RAW_KEY_BYTES);
    return createPublicKey({ key: this.der, format: 'der', type: 'spki' });
  }
}
