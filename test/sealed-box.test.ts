/**
 * The CKKS secret key travels to each participant in a sealed box relayed by the coordinator: only the addressee
 * may open it, only for the job and recipient it was made for, and any alteration must be caught.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { exportPrivateKey, generateBoxKeyPair, importPrivateKey, open, seal } from '../src/crypto/sealed-box.js';
import { FedcreditError } from '../src/errors.js';

const AD = 'job-7f3a|bank-b';

function expectUnseal(fn: () => unknown): FedcreditError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'open() should throw a FedcreditError').toBeInstanceOf(FedcreditError);
  expect((caught as FedcreditError).code).toBe('FC_KEY_UNSEAL');
  return caught as FedcreditError;
}

describe('sealed box', () => {
  const recipient = generateBoxKeyPair();
  // A CKKS secret key is a few hundred kB; a realistic size exercises the streaming cipher.
  const secret = randomBytes(300_000);

  it('opens to the exact plaintext for the right key and associated data', () => {
    const box = seal(secret, recipient.publicKey, AD);
    expect(Buffer.from(open(box, recipient, AD)).equals(secret)).toBe(true);
    expect(box.length).toBe(1 + 32 + 12 + secret.length + 16);
    expect(Buffer.from(open(seal(new Uint8Array(), recipient.publicKey, AD), recipient, AD)).length).toBe(0);
  });

  it('opens with a private key exported to PEM and read back (the key a participant stores at rest)', () => {
    const box = seal(secret, recipient.publicKey, AD);
    const restored = { publicKey: recipient.publicKey, privateKey: importPrivateKey(exportPrivateKey(recipient.privateKey)) };
    expect(Buffer.from(open(box, restored, AD)).equals(secret)).toBe(true);
  });

  it('cannot be opened with another recipient key', () => {
    const box = seal(secret, recipient.publicKey, AD);
    const other = generateBoxKeyPair();
    const err = expectUnseal(() => open(box, other, AD));
    expect(err.message).toMatch(/authentication failed/);
  });

  it('cannot be opened under other associated data: another job, another recipient, or none', () => {
    const box = seal(secret, recipient.publicKey, AD);
    expectUnseal(() => open(box, recipient, 'job-0000|bank-b'));
    expectUnseal(() => open(box, recipient, 'job-7f3a|bank-c'));
    expectUnseal(() => open(box, recipient, ''));
    expectUnseal(() => open(box, recipient, AD + ' '));
  });

  it('fails on a flipped bit or byte at every position (version, ephemeral key, nonce, ciphertext, tag)', () => {
    const plaintext = randomBytes(40);
    const box = Buffer.from(seal(plaintext, recipient.publicKey, AD));
    let attempts = 0;
    for (let i = 0; i < box.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const tampered = Buffer.from(box);
        tampered[i]! ^= mask;
        expectUnseal(() => open(tampered, recipient, AD));
        attempts++;
      }
    }
    expect(attempts).toBe(3 * (1 + 32 + 12 + 40 + 16));
    // The untouched box still opens: the failures above are the tampering, not the box.
    expect(Buffer.from(open(box, recipient, AD)).equals(plaintext)).toBe(true);
  });

  it('fails on a truncated, extended or empty box', () => {
    const box = Buffer.from(seal(secret, recipient.publicKey, AD));
    expectUnseal(() => open(box.subarray(0, box.length - 1), recipient, AD));
    expectUnseal(() => open(box.subarray(0, 60), recipient, AD));
    expectUnseal(() => open(box.subarray(0, 10), recipient, AD));
    expectUnseal(() => open(new Uint8Array(), recipient, AD));
    expectUnseal(() => open(Buffer.concat([box, Buffer.of(0)]), recipient, AD));
  });

  it('fails with FC_KEY_UNSEAL, not an OpenSSL error, when the ephemeral key is replaced by a low-order point', () => {
    // All-zero (and other small-order) X25519 public keys make the key agreement produce zero, which OpenSSL
    // refuses; a tampered box must still be reported as a box that cannot be opened.
    const box = Buffer.from(seal(secret, recipient.publicKey, AD));
    box.fill(0, 1, 33);
    expectUnseal(() => open(box, recipient, AD));
  });

  it('two seals of the same plaintext differ entirely (fresh ephemeral key and nonce each time)', () => {
    const a = Buffer.from(seal(secret, recipient.publicKey, AD));
    const b = Buffer.from(seal(secret, recipient.publicKey, AD));
    expect(a.equals(b)).toBe(false);
    expect(a.subarray(1, 33).equals(b.subarray(1, 33))).toBe(false); // ephemeral public key
    expect(a.subarray(33, 45).equals(b.subarray(33, 45))).toBe(false); // nonce
    expect(a.subarray(45, 45 + 64).equals(b.subarray(45, 45 + 64))).toBe(false); // ciphertext
    expect(Buffer.from(open(a, recipient, AD)).equals(Buffer.from(open(b, recipient, AD)))).toBe(true);
  });

  it('does not contain the plaintext, nor any 16-byte run of it', () => {
    // A recognisable plaintext: a run of text repeated, which would show through any non-encryption.
    const plaintext = Buffer.from('CKKS SECRET KEY '.repeat(4096));
    const box = Buffer.from(seal(plaintext, recipient.publicKey, AD));
    expect(box.includes(plaintext)).toBe(false);
    expect(box.includes(Buffer.from('CKKS SECRET KEY '))).toBe(false);
    const sealed = Buffer.from(seal(secret, recipient.publicKey, AD));
    for (let i = 0; i + 16 <= secret.length; i += 997) expect(sealed.includes(secret.subarray(i, i + 16))).toBe(false);
  });
});
