/**
 * Ed25519 (RFC 8032) signing keys of ledger authors, with node:crypto. The private key lives in a PKCS#8 PEM file
 * that only its owner may read; the raw 32-byte public key is what signers.json publishes.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync, fchmodSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { publicKeyFromRaw, rawPublicKey as rawKeyBytes } from '../crypto/raw-keys.js';
import { LedgerError } from './errors.js';
import { hex } from '../bytes.js';

export interface SigningKey {
  privateKey: KeyObject;
  publicKeyRaw: Uint8Array;
}

/** The raw 32-byte Ed25519 public key of a private or public KeyObject. */
export function rawPublicKey(key: KeyObject): Uint8Array {
  return new Uint8Array(rawKeyBytes(key));
}

/**
 * Load the Ed25519 key in `file`, or create it (atomically: written and synced under a temporary name, then
 * hard-linked into place, so a concurrent creator or a crash never leaves a half-written key, and an existing key
 * is never overwritten). Refuses a key file that group or others can read or write.
 */
export function loadOrCreateSigningKey(file: string): SigningKey {
  let pem: string;
  try {
    pem = readKeyFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    createKeyFile(file);
    pem = readKeyFile(file);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new LedgerError('key_invalid', `the ledger signing key ${file} is not a PEM private key: ${(err as Error).message}`, { cause: err });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new LedgerError('key_invalid', `the ledger signing key ${file} is a ${privateKey.asymmetricKeyType} key; an Ed25519 key (PKCS#8 PEM) is required`);
  }
  return { privateKey, publicKeyRaw: rawPublicKey(privateKey) };
}

function readKeyFile(file: string): string {
  const st = statSync(file);
  if (!st.isFile()) throw new LedgerError('key_invalid', `the ledger signing key ${file} is not a regular file`);
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new LedgerError(
      'key_insecure',
      `refusing to use the ledger signing key ${file}: its mode is ${mode}, so group or others can read or change it. ` +
        `Anyone who can read it can forge ledger entries. Fix: chmod 600 ${file} (and consider the key exposed if others had access).`,
    );
  }
  return readFileSync(file, 'utf8');
}

function createKeyFile(file: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    fchmodSync(fd, 0o600); // whatever the umask
    writeSync(fd, pem);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file); // fails with EEXIST if another process created the key first: then that key is used
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  fsyncDir(dirname(file));
}

/** fsync a directory so a created or renamed entry in it is durable (a no-op where directories cannot be synced). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EBADF') throw err;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function sign(privateKey: KeyObject, bytes: Uint8Array): Uint8Array {
  return new Uint8Array(edSign(null, bytes, privateKey));
}

const publicKeys = new Map<string, KeyObject>();

function publicKeyObject(publicKeyRaw: Uint8Array): KeyObject {
  const id = hex(publicKeyRaw);
  let key = publicKeys.get(id);
  if (!key) {
    key = publicKeyFromRaw('ed25519', publicKeyRaw);
    if (publicKeys.size > 1000) publicKeys.clear();
    publicKeys.set(id, key);
  }
  return key;
}

/** True when `signature` is a valid Ed25519 signature of `bytes` by the raw public key; false for anything malformed. */
export function verifySignature(publicKeyRaw: Uint8Array, bytes: Uint8Array, signature: Uint8Array): boolean {
  if (publicKeyRaw.length !== 32 || signature.length !== 64) return false;
  try {
    return edVerify(null, bytes, publicKeyObject(publicKeyRaw), signature);
  } catch {
    return false;
  }
}
