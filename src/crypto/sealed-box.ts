/**
 * Sealed boxes: encrypt bytes to a recipient's X25519 public key so that only the holder of the matching private
 * key can open them (the CKKS secret key travels this way, relayed by a coordinator that cannot read it).
 *
 * Construction (ECIES): a fresh ephemeral X25519 key pair per box; shared = X25519(eph, recipient);
 * key = HKDF-SHA256(shared, salt = eph_pub || recipient_pub, info = "fedcredit sealed box v1"); AES-256-GCM with a
 * random 96-bit nonce and the caller's associated data (job id and recipient), so a box cannot be replayed
 * into another job or to another party.
 * Layout: version(1) = 1 | eph_pub(32) | nonce(12) | ciphertext | tag(16).
 *
 * Authenticated boxes (version 2, HPKE's Auth mode in spirit) also prove who sealed them: the key is derived from
 * both X25519(eph, recipient) and X25519(sender, recipient), with the sender's public key in the salt, so only the
 * holder of the sender's private key could have made the box. With per-job box keys bound to certificates
 * (key-binding.ts), a payload relayed by the coordinator is both private to its recipient and authentic from its
 * sender. Layout as version 1, with version(1) = 2.
 */
import { createCipheriv, createDecipheriv, createPrivateKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { ErrorCode, FedcreditError } from '../errors.js';
import { publicKeyFromRaw as keyFromRaw, rawPublicKey, RAW_KEY_BYTES } from './raw-keys.js';

const VERSION = 1;
const AUTH_VERSION = 2;
const INFO = Buffer.from('fedcredit sealed box v1');
const AUTH_INFO = Buffer.from('fedcredit sealed box v2 auth');

export interface BoxKeyPair {
  publicKey: Uint8Array; // raw 32 bytes
  privateKey: KeyObject;
}

export function generateBoxKeyPair(): BoxKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { publicKey: rawPublicKey(publicKey), privateKey };
}

/** The raw 32-byte public key of an X25519 private key (a key pair restored from its PEM). */
export function rawX25519PublicKey(privateKey: KeyObject): Uint8Array {
  return rawPublicKey(privateKey);
}

function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== RAW_KEY_BYTES) throw new FedcreditError(ErrorCode.KEY_UNSEAL, `an X25519 public key is ${RAW_KEY_BYTES} bytes, got ${raw.length}`, 'the peer sent a malformed key; restart it');
  return keyFromRaw('x25519', raw);
}

/** PKCS#8 PEM of a private key, for storing at rest with 0600 permissions. */
export function exportPrivateKey(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function importPrivateKey(pem: string): KeyObject {
  return createPrivateKey(pem);
}

function deriveKey(shared: Buffer, ephPub: Uint8Array, recipientPub: Uint8Array, senderPub?: Uint8Array): Buffer {
  if (!senderPub) return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephPub, recipientPub]), INFO, 32));
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephPub, recipientPub, senderPub]), AUTH_INFO, 32));
}

/**
 * Seal `plaintext` to a recipient's X25519 key; with `sender`, an authenticated box that only `open` with the
 * sender's public key accepts.
 */
export function seal(plaintext: Uint8Array, recipientPublicKey: Uint8Array, associatedData: string, sender?: BoxKeyPair): Uint8Array {
  const eph = generateBoxKeyPair();
  const recipient = publicKeyFromRaw(recipientPublicKey);
  let shared = diffieHellman({ privateKey: eph.privateKey, publicKey: recipient });
  if (sender) shared = Buffer.concat([shared, diffieHellman({ privateKey: sender.privateKey, publicKey: recipient })]);
  const key = deriveKey(shared, eph.publicKey, recipientPublicKey, sender?.publicKey);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(associatedData));
  // Ciphertexts of a few hundred kilobytes go through here every batch: one copy into the box, none in between.
  const body = cipher.update(plaintext);
  const tail = cipher.final(); // empty for GCM, which encrypts as it goes
  const box = Buffer.allocUnsafe(1 + eph.publicKey.length + nonce.length + body.length + tail.length + 16);
  box[0] = sender ? AUTH_VERSION : VERSION;
  let at = 1;
  for (const part of [eph.publicKey, nonce, body, tail, cipher.getAuthTag()]) {
    box.set(part, at);
    at += part.length;
  }
  return box;
}

/**
 * Open a box sealed to `recipient`. With `senderPublicKey` only an authenticated box made with that sender's key
 * opens: a box sealed by anyone else (or an unauthenticated one) is refused.
 */
export function open(box: Uint8Array, recipient: BoxKeyPair, associatedData: string, senderPublicKey?: Uint8Array): Uint8Array {
  const fail = (why: string) =>
    new FedcreditError(
      ErrorCode.KEY_UNSEAL,
      `cannot open sealed box: ${why}`,
      'the box was made for another key or job, by another sender, or altered in transit; re-run the job so the keys are sealed again',
    );
  if (box.length < 1 + 32 + 12 + 16 || (box[0] !== VERSION && box[0] !== AUTH_VERSION)) throw fail('malformed box');
  if (senderPublicKey && box[0] !== AUTH_VERSION) throw fail('the box does not authenticate its sender');
  if (!senderPublicKey && box[0] === AUTH_VERSION) throw fail('the box is authenticated but no sender key was given to check it');
  const ephPub = box.subarray(1, 33);
  const nonce = box.subarray(33, 45);
  const body = box.subarray(45, box.length - 16);
  const tag = box.subarray(box.length - 16);
  try {
    // Key agreement fails outright for a low-order ephemeral point; that is a bad box like any other.
    let shared = diffieHellman({ privateKey: recipient.privateKey, publicKey: publicKeyFromRaw(ephPub) });
    if (senderPublicKey) shared = Buffer.concat([shared, diffieHellman({ privateKey: recipient.privateKey, publicKey: publicKeyFromRaw(senderPublicKey) })]);
    const decipher = createDecipheriv('aes-256-gcm', deriveKey(shared, ephPub, recipient.publicKey, senderPublicKey), nonce);
    decipher.setAAD(Buffer.from(associatedData));
    decipher.setAuthTag(tag);
    const head = decipher.update(body);
    const tail = decipher.final();
    return tail.length === 0 ? head : Buffer.concat([head, tail]);
  } catch {
    throw fail('authentication failed');
  }
}

/** Raw X25519 key agreement with a peer's public key (pairwise mask seeds between two parties of a job). */
export function sharedSecret(privateKey: KeyObject, peerPublicKey: Uint8Array): Buffer {
  return diffieHellman({ privateKey, publicKey: publicKeyFromRaw(peerPublicKey) });
}
