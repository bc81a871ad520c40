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
import { existsSync, readdirSync, readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Http2SecureServer } from 'node:http2';
import { dirname, join, resolve } from 'node:path';
import { checkServerIdentity, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { ErrorCode, FedcreditError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { readIdentity, verifyPeer } from '../pki/verifier.js';
import type { Role } from '../pki/names.js';
import { specDigest, type JobBinding } from '../crypto/key-binding.js';

export type Transport = { kind: 'mtls'; dir: string; ca: Buffer; cert: Buffer; key: Buffer; crlFile?: string } | { kind: 'insecure' };

export interface PeerIdentity {
  organisation: string;
  role: Role;
}

const INSECURE_WARNING =
  'INSECURE: plaintext gRPC without mutual TLS. Peers are not authenticated, identities are self-declared and traffic can be read on the network. Use only for tests on a machine you control.';

/** Read an identity folder (ca.pem, cert.pem, key.pem); errors name the missing file and how to make it. */
export function identityFromDir(dir: string, opts: { crl?: string } = {}): Transport {
  const abs = resolve(dir);
  if (!existsSync(abs)) {
    // A mistyped path is the usual cause: the identity folders beside it are the likely fix.
    const parent = dirname(abs);
    const siblings = existsSync(parent) ? readdirSync(parent, { withFileTypes: true }).filter((e) => e.isDirectory() && existsSync(join(parent, e.name, 'cert.pem'))) : [];
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `the identity folder ${abs} does not exist`,
      `check the path (tls.dir is relative to the config file's folder; --identity to the working directory)` +
        (siblings.length > 0 ? `; ${parent} holds the identities ${siblings.map((e) => e.name).join(', ')}` : '') +
        '; `fedcredit pki request` (then `pki sign` at the CA) or `pki issue` makes one',
    );
  }
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
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `the revocation list ${crlFile} does not exist`, "point tls.crl at the CA folder's crl.pem (`fedcredit pki init` writes it)");
  }
  return { kind: 'mtls', dir: abs, ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem'), crlFile };
}

/**
 * A node's own certificate must be what its config says the node is: checked at start, naming both, rather than
 * refused by the coordinator at every Hello while the node keeps reconnecting.
 */
export function checkOwnIdentity(t: Transport, expected: { organisation?: string; role: Role }, configFile: string): void {
  if (t.kind !== 'mtls') return;
  const own = readIdentity(t.cert);
  if (own.role === expected.role && (expected.organisation === undefined || own.organisation === expected.organisation)) return;
  const org = expected.organisation;
  throw new FedcreditError(
    ErrorCode.CONFIG_INVALID,
    `${configFile}: tls.dir ${t.dir} holds ${own.organisation}'s ${own.role} certificate, but this node runs as ${org ? `${org}'s` : 'a'} ${expected.role}`,
    org
      ? `point tls.dir at ${org}'s ${expected.role} identity folder (\`fedcredit pki request --org ${org} --role ${expected.role}\`, signed with \`fedcredit pki sign\`), or correct \`organisation\` in ${configFile}`
      : `point tls.dir at a ${expected.role} identity folder (\`fedcredit pki issue --org coordinator --role ${expected.role}\`)`,
  );
}

/**
 * How a node binds its keys for one job and checks its peers' (src/crypto/key-binding.ts): its certificate and key,
 * the federation CA and, when configured, the revocation list as it is now, the digest of the spec it was offered
 * and the parties it names (guest or lead first). Undefined with --insecure, where nothing is authenticated.
 */
export function jobBinding(t: Transport, specJson: string, parties: string[]): JobBinding | undefined {
  if (t.kind !== 'mtls') return undefined;
  const trust = { ca: t.ca, ...(t.crlFile && existsSync(t.crlFile) ? { crl: readFileSync(t.crlFile) } : {}) };
  return { signer: { certificate: t.cert, key: t.key }, trust, specSha256: specDigest(specJson), parties };
}

/** Plaintext gRPC, announced on standard error (and in a node's log, when it has one). */
export function insecureTransport(log?: Logger): Transport {
  log?.warn(INSECURE_WARNING);
  process.stderr.write(`fedcredit: ${INSECURE_WARNING}\n`);
  return { kind: 'insecure' };
}

function contextOptions(t: Extract<Transport, { kind: 'mtls' }>): SecureContextOptions {
  return { ca: t.ca, cert: t.cert, key: t.key, ...(t.crlFile ? { crl: readFileSync(t.crlFile) } : {}) };
}

/**
 * Server credentials that ask every client for a certificate, verified by OpenSSL against the federation CA and
 * its revocation list. The verdict is enforced by `guardHandshakes` (which can log the reason, as rejecting inside
 * OpenSSL would not) and again, per call, by `check`.
 */
class FederationServerCredentials extends grpc.ServerCredentials {
  crl?: Buffer;

  constructor(private readonly transport: Extract<Transport, { kind: 'mtls' }>) {
    const options = contextOptions(transport);
    super({ requestCert: true, rejectUnauthorized: false }, options);
    this.crl = options.crl as Buffer | undefined;
  }

  reload(): void {
    const options = contextOptions(this.transport);
    this.updateSecureContextOptions(options);
    this.crl = options.crl as Buffer | undefined;
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

export interface ServerTransport {
  credentials: grpc.ServerCredentials;
  /**
   * After bind: close, and log with OpenSSL's reason, every connection whose client certificate did not verify
   * (expired, revoked, another CA, self-signed, none). Throws if it cannot, so the server never runs unguarded.
   */
  guardHandshakes(server: grpc.Server): void;
  /** Per call: the peer certificate verifies against the CA and the current revocation list (a second line of defence). */
  check(peerCertificate: Buffer): { ok: true; identity: PeerIdentity } | { ok: false; reason: string };
  /** Called after each reload of the revocation list, so that streams already open can be checked again. */
  onReload(listener: () => void): void;
  close(): void;
}

export function serverTransport(t: Transport, log: Logger): ServerTransport {
  if (t.kind === 'insecure') {
    const check = () => ({ ok: false as const, reason: 'an insecure server has no certificates to check' });
    return { credentials: grpc.ServerCredentials.createInsecure(), guardHandshakes: () => undefined, check, onReload: () => undefined, close: () => undefined };
  }
  const credentials = new FederationServerCredentials(t);
  const reloaded = new Set<() => void>();
  if (t.crlFile) {
    const crlFile = t.crlFile;
    watchFile(crlFile, { interval: 1000 }, () => {
      try {
        credentials.reload();
        log.info({ crl: crlFile }, 'certificate revocation list reloaded');
      } catch (err) {
        log.error({ crl: crlFile, err: errorMessage(err) }, 'the revocation list could not be reloaded; the previous one stays in force');
        return;
      }
      for (const listener of reloaded) listener();
    });
  }
  return {
    credentials,
    onReload: (listener) => void reloaded.add(listener),
    guardHandshakes(server) {
      // grpc-js exposes neither its HTTP/2 servers nor refused handshakes; the servers are reachable through this field.
      const servers = [...((server as unknown as { http2Servers?: Map<Http2SecureServer, unknown> }).http2Servers?.keys() ?? [])];
      if (servers.length === 0) throw new Error('cannot guard TLS handshakes: this grpc-js version does not expose its HTTP/2 servers; refusing to run without the guard');
      for (const http2Server of servers) {
        http2Server.prependListener('secureConnection', (socket: TLSSocket) => {
          if (socket.authorized) return;
          const code = String(socket.authorizationError ?? '');
          // OpenSSL reports the last problem it met (a foreign certificate often shows as a missing CRL); our own
          // check of the certificate names the first.
          const raw = socket.getPeerCertificate()?.raw;
          const verdict = raw ? verifyPeer(raw, { ca: t.ca, crl: credentials.crl }) : undefined;
          const reason = !raw
            ? 'no client certificate'
            : verdict && !verdict.ok
              ? (REFUSAL_WORDS[verdict.reason] ?? verdict.reason)
              : handshakeReason({ code, message: code } as Error & { code: string });
          log.warn({ peer: `${socket.remoteAddress}:${socket.remotePort}`, reason, detail: code }, 'TLS handshake refused');
          socket.destroy();
        });
        http2Server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
          log.warn({ peer: `${socket.remoteAddress}:${socket.remotePort}`, reason: handshakeReason(err), detail: err.message }, 'TLS handshake refused');
        });
      }
    },
    check(peerCertificate) {
      const verdict = verifyPeer(peerCertificate, { ca: t.ca, crl: credentials.crl });
      return verdict.ok ? { ok: true, identity: { organisation: verdict.identity.organisation, role: verdict.identity.role } } : { ok: false, reason: `${verdict.reason}: ${verdict.detail}` };
    },
    close: () => {
      if (t.crlFile) unwatchFile(t.crlFile);
    },
  };
}

const REFUSAL_WORDS: Record<string, string> = {
  expired: 'certificate expired',
  'not-yet-valid': 'certificate not yet valid',
  'wrong-ca': 'certificate not issued by the federation CA',
  'self-signed': 'self-signed certificate',
  revoked: 'certificate revoked',
  malformed: 'malformed certificate',
  'crl-invalid': 'the revocation list is missing or expired (run `fedcredit pki refresh-crl`)',
};

/** OpenSSL's verdict on a refused client certificate, in words an operator can act on. */
function handshakeReason(err: Error & { code?: string }): string {
  const text = `${err.code ?? ''} ${err.message}`;
  if (/revoked/i.test(text)) return 'certificate revoked';
  if (/CRL/.test(text)) return 'the revocation list is missing or expired (run `fedcredit pki refresh-crl`)';
  if (/expired/i.test(text)) return 'certificate expired';
  if (/not yet valid/i.test(text)) return 'certificate not yet valid';
  if (/self.signed/i.test(text)) return 'self-signed certificate';
  if (/unknown ca|unable to get (local )?issuer|certificate verify failed|UNABLE_TO_VERIFY/i.test(text)) return 'certificate not issued by the federation CA';
  if (/no certificate|peer did not return a certificate|certificate required/i.test(text)) return 'no client certificate';
  return 'TLS handshake failed';
}

/**
 * Why a dial to the coordinator failed, in words an operator can act on, from gRPC's details of an UNAVAILABLE: the
 * TLS handshake failing on either side. Undefined when the details say nothing more specific (the coordinator down
 * or unreachable on the network).
 */
export function dialFailure(details: string): { cause: string; fix: string } | undefined {
  if (/self.signed certificate in certificate chain|unable to get (local )?issuer|unable to verify the first certificate|UNABLE_TO_VERIFY/i.test(details))
    return {
      cause: "the coordinator's certificate is not signed by the CA in this identity's ca.pem",
      fix: "put the federation CA's ca.pem in the identity folder (tls.dir or --identity): the one that signed the coordinator's certificate, which `fedcredit pki sign --out DIR` writes beside the certificate it issues",
    };
  if (/certificate has expired|CERT_HAS_EXPIRED/i.test(details))
    return { cause: "the coordinator's certificate has expired", fix: "the coordinator's operator issues it a new one (`fedcredit pki issue --role coordinator`) and restarts it" };
  if (/Hostname\/IP does not match|does not match certificate|ERR_TLS_CERT_ALTNAME_INVALID/i.test(details))
    return {
      cause: "the coordinator's certificate is not issued for the address dialled",
      fix: 'dial the name the certificate carries, or issue the coordinator a certificate with `--hosts <that name>`',
    };
  // The server ends the handshake without a word when it refuses the client's certificate.
  if (/No connection established/i.test(details) && /ECONNRESET|socket hang up|Failed to connect|certificate|alert/i.test(details))
    return {
      cause: "the coordinator closed the connection during the TLS handshake: it most likely refuses this identity's certificate (revoked, expired, or not issued by the federation's CA)",
      fix: "the coordinator's log says which (`TLS handshake refused`, with the reason); get a certificate from the federation's CA (`fedcredit pki request`, then `pki sign` at the CA)",
    };
  return undefined;
}

/**
 * How a client dials the coordinator: its certificate, the federation CA, and a check that the server is the
 * federation's *coordinator* (its certificate's role), for the address dialled. The TLS server name is a fixed
 * name rather than an IP address (RFC 6066 forbids IPs there); the address itself is checked against the
 * certificate by the same check.
 */
function dialOptions(t: Transport, address: string): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  if (t.kind === 'insecure') return { credentials: grpc.credentials.createInsecure(), options: {} };
  const host = address.startsWith('[') ? address.slice(1, address.indexOf(']')) : address.slice(0, address.lastIndexOf(':'));
  const credentials = grpc.credentials.createSsl(t.ca, t.key, t.cert, {
    checkServerIdentity: (_name, cert) => {
      let role: Role;
      try {
        role = readIdentity(cert.raw).role;
      } catch (err) {
        return new Error(`the server's certificate carries no fedcredit identity: ${errorMessage(err)}`);
      }
      if (role !== 'coordinator') return new Error(`the server presented a ${role} certificate, not a coordinator's`);
      return checkServerIdentity(host, cert);
    },
  });
  return { credentials, options: { 'grpc.ssl_target_name_override': 'localhost' } };
}

/** A gRPC client of `ClientCtor` for the coordinator at `address`, with `dialOptions`. */
export function dialed<C>(
  ClientCtor: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => C,
  address: string,
  t: Transport,
  extra: grpc.ChannelOptions = {},
): C {
  const dial = dialOptions(t, address);
  return new ClientCtor(address, dial.credentials, { ...extra, ...dial.options });
}
