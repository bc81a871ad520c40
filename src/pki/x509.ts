/** @peculiar/x509, set up once for the PKI modules: every one of them imports it from here. */
// Must come before @peculiar/x509: its dependency-injection container (tsyringe) throws at load time without the
// Reflect metadata API ("tsyringe requires a reflect polyfill").
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

// Use Node's WebCrypto explicitly rather than relying on the library's detection of a global `crypto`.
x509.cryptoProvider.set(webcrypto);

export { x509 };
