/**
 * How fedcredit's processes talk: mutual TLS pinned to the federation's CA (the default), or plaintext gRPC
 * (`--insecure`, for tests that say why). With mutual TLS the identity of every peer (organisation and role) comes
 * from its certificate, never from what it says about itself.
 *
 * An identity folder is what `fedcredit pki issue` writes: `ca.pem` (the federation CA), `cert.pem` and
 * `key.pem` (mode 0600). The coordinator also reads the CA's revocation list (`crl.pem`) and reloads it when the
 * file changes, so `fedcredit pki revoke` takes effect without a restart: a revoked certificate is refused at the
 * TLS handshake, like an expired one, one from another CA, or a self-signed one.
 */
import * as grpc from '@grpc/grpc-js';
import { existsSync, readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Http2SecureServer } from 'node:http2';
import { join, resolve } from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import { ErrorCode, FedcreditError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { readIdentity, type Role } from '../pki/pki.js';

export type Transport =
  | { kind: 'mtls'; dir: string; ca: Buffer; cert: Buffer; key: Buffer; crlFile?: string }
  | { kind: 'insecure' };

export interface PeerIdentity {
  organisation: string;
  role: Role;
}

const INSECURE_WARNING =
  'INSECURE: plaintext gRPC without mutual TLS. Peers are not authenticated, identities are self-declared and traffic can be read on the network. Use only for tests on a machine you control.';

/** Read an identity folder (ca.pem, cert.pem, key.pem); errors name the missing file and how to make it. */
export function identityFromDir(dir: string, opts: { crl?: string } = {}): Transport {
  const abs = resolve(dir);
  const read = (name: string) => {
    const file = join(abs, name);
    if (!existsSync(file)) {
      throw new FedcreditError(
        ErrorCode.CONFIG_INVALID,
        `the identity folder ${abs} has no ${name}`,
        'issue this node a certificate with `fedcredit pki issue --dir <ca folder> --org <organisation> --role <role> --out ' + abs + '`, or run with --insecure (tests only)',
      );
    }
    return readFileSync(file);
  };
  const crlFile = opts.crl ? resolve(opts.crl) : undefined;
  if (crlFile && !existsSync(crlFile)) {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `the revocation list ${crlFile} does not exist`, 'point tls.crl at the CA folder\'s crl.pem (`fedcredit pki init` writes it)');
  }
  return { kind: 'mtls', dir: abs, ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem'), crlFile };
}

export function insecureTransport(log: Logger): Transport {
  log.warn(INSECURE_WARNING);
  process.stderr.write(`fedcredit: ${INSECURE_WARNING}\n`);
  return { kind: 'insecure' };
}

function contextOptions(t: Extract<Transport, { kind: 'mtls' }>): SecureContextOptions {
  return { ca: t.ca, cert: t.cert, key: t.key, ...(t.crlFile ? { crl: readFileSync(t.crlFile) } : {}) };
}

/** Server credentials that require a client certificate from the federation CA and honour its revocation list. */
class FederationServerCredentials extends grpc.ServerCredentials {
  constructor(private readonly transport: Extract<Transport, { kind: 'mtls' }>) {
    super({ requestCert: true, rejectUnauthorized: true }, contextOptions(transport));
  }

  reload(): void {
    this.updateSecureContextOptions(contextOptions(this.transport));
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

export interface ServerTransport {
  credentials: grpc.ServerCredentials;
  /** Log handshakes the server refused (after bind), with the reason OpenSSL gave. */
  watchHandshakes(server: grpc.Server): void;
  close(): void;
}

export function serverTransport(t: Transport, log: Logger): ServerTransport {
  if (t.kind === 'insecure') return { credentials: grpc.ServerCredentials.createInsecure(), watchHandshakes: () => undefined, close: () => undefined };
  const credentials = new FederationServerCredentials(t);
  if (t.crlFile) {
    const crlFile = t.crlFile;
    watchFile(crlFile, { interval: 1000 }, () => {
      try {
        credentials.reload();
        log.info({ crl: crlFile }, 'certificate revocation list reloaded');
      } catch (err) {
        log.error({ crl: crlFile, err: errorMessage(err) }, 'the revocation list could not be reloaded; the previous one stays in force');
      }
    });
  }
  return {
    credentials,
    watchHandshakes(server) {
      // grpc-js does not report refused TLS handshakes; its HTTP/2 servers are reachable only through this field.
      const servers = (server as unknown as { http2Servers?: Map<Http2SecureServer, unknown> }).http2Servers;
      for (const http2Server of servers?.keys() ?? []) {
        http2Server.on('tlsClientError', (err: Error & { code?: string }, socket) => {
          log.warn({ peer: `${socket.remoteAddress}:${socket.remotePort}`, reason: handshakeReason(err), detail: err.message }, 'TLS handshake refused');
        });
      }
    },
    close: () => {
      if (t.crlFile) unwatchFile(t.crlFile);
    },
  };
}

/** OpenSSL's verdict on a refused client certificate, in words an operator can act on. */
function handshakeReason(err: Error & { code?: string }): string {
  const text = `${err.code ?? ''} ${err.message}`;
  if (/revoked/i.test(text)) return 'certificate revoked';
  if (/expired/i.test(text)) return 'certificate expired';
  if (/not yet valid/i.test(text)) return 'certificate not yet valid';
  if (/self.signed/i.test(text)) return 'self-signed certificate';
  if (/unknown ca|unable to get (local )?issuer|certificate verify failed|UNABLE_TO_VERIFY/i.test(text)) return 'certificate not issued by the federation CA';
  if (/no certificate|peer did not return a certificate|certificate required/i.test(text)) return 'no client certificate';
  return 'TLS handshake failed';
}

export function channelCredentials(t: Transport): grpc.ChannelCredentials {
  if (t.kind === 'insecure') return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(t.ca, t.key, t.cert);
}

/** The authenticated peer of a call, from its certificate; undefined on an insecure server. */
export function peerIdentity(call: { getAuthContext?: () => { sslPeerCertificate?: { raw?: Buffer } } | null }): PeerIdentity | undefined {
  const raw = call.getAuthContext?.()?.sslPeerCertificate?.raw;
  if (!raw) return undefined;
  const id = readIdentity(raw);
  return { organisation: id.organisation, role: id.role };
}
