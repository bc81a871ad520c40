/**
 * The trust boundary at the transport: the coordinator accepts only certificates of the federation's CA that are
 * valid and not revoked, refuses the rest at the TLS handshake (and logs why), and lets each caller do only what
 * the role in its certificate allows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinatorClient } from '../src/client.js';
import { initCa, issueCertificate, revokeCertificate } from '../src/pki/ca.js';
import { dialed, identityFromDir, type Transport } from '../src/wire/transport.js';
import { coordinatorServiceDefinition, PROTOCOL_VERSION } from '../src/wire/proto.js';
import { encodeFrames, type Frame } from '../src/wire/framing.js';
import type { ParticipantMessage } from '../src/wire/messages.js';
import { TestFederation } from './helpers/federation.js';
import { verifyLedger } from '../src/ledger/verify.js';

const data = mkdtempSync(join(tmpdir(), 'fedcredit-mtls-data-'));
writeFileSync(join(data, 'bank.csv'), 'id,y,x\n' + Array.from({ length: 50 }, (_, i) => `e${i},${i % 2},${i / 10}`).join('\n') + '\n');

/** Ask for an unknown job: NOT_FOUND means the call got through the handshake and the role check. */
async function probe(address: string, transport: Transport): Promise<string> {
  const client = new CoordinatorClient(address, transport);
  try {
    await client.getJob('job-00000000-probe');
    return 'OK';
  } catch (err) {
    const hint = (err as { hint?: string }).hint;
    return `${(err as Error).message}${hint ? `\n  fix: ${hint}` : ''}`;
  } finally {
    client.close();
  }
}

describe('mutual TLS and roles', () => {
  let fed: TestFederation;
  const pki = () => join(fed.dir, 'pki');
  const logOf = () => readFileSync(join(fed.dir, 'logs', 'coordinator.log'), 'utf8');
  const issue = async (org: string, role: 'submitter' | 'participant' | 'auditor', extra: { notBefore?: Date; notAfter?: Date } = {}) => {
    const out = mkdtempSync(join(tmpdir(), `fedcredit-id-${org}-`));
    await issueCertificate(pki(), { organisation: org, role, outDir: out, ...extra });
    return identityFromDir(out);
  };
  beforeAll(async () => {
    fed = await TestFederation.start([
      {
        name: 'bank',
        data: {
          path: join(data, 'bank.csv'),
          delimiter: ',',
          id_column: 'id',
          label_column: 'y',
          features: [{ name: 'x', type: 'number', missing: 'impute' }],
          duplicate_ids: 'reject',
          missing_values: [''],
        },
      },
    ]);
  });
  afterAll(async () => fed?.stop());

  it('a submitter and an auditor of the federation get through; the coordinator logs that it runs mutual TLS', async () => {
    expect(await probe(fed.cluster.address, await fed.identity('test-bank', 'submitter'))).toMatch(/no job job-00000000-probe/);
    expect(await probe(fed.cluster.address, await issue('regulator', 'auditor'))).toMatch(/no job/);
    expect(logOf()).toMatch(/mutual TLS/);
  });

  it('refuses at the handshake, and logs why: an expired certificate, one from another CA, a self-signed one, no certificate', async () => {
    const expired = await issue('old-bank', 'submitter', { notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
    const otherCa = mkdtempSync(join(tmpdir(), 'fedcredit-other-ca-'));
    await initCa(otherCa);
    const foreignOut = join(otherCa, 'issued', 'bank');
    await issueCertificate(otherCa, { organisation: 'test-bank', role: 'submitter', outDir: foreignOut });
    // A foreign certificate presented with the federation's CA as trust root (the client side is fine; the server must refuse).
    const foreignId = identityFromDir(foreignOut) as Extract<Transport, { kind: 'mtls' }>;
    const foreign: Transport = { ...foreignId, ca: readFileSync(join(pki(), 'ca.pem')) };
    const selfSigned: Transport = { kind: 'mtls', dir: otherCa, ca: readFileSync(join(pki(), 'ca.pem')), cert: readFileSync(join(otherCa, 'ca.pem')), key: readFileSync(join(otherCa, 'ca-key.pem')) };
    for (const [name, t] of [
      ['expired', expired],
      ['other CA', foreign],
      ['self-signed', selfSigned],
    ] as const) {
      const refused = await probe(fed.cluster.address, t);
      expect(refused, name).toMatch(/cannot reach the coordinator/);
      // The client cannot see why the coordinator refused it, but it can say that it was refused, and where to look.
      expect(refused, name).toContain('the coordinator closed the connection during the TLS handshake: it most likely refuses this identity');
      expect(refused, name).toContain("fix: the coordinator's log says which (`TLS handshake refused`");
    }
    // The other way round: this identity's ca.pem is another CA's, so the client refuses the coordinator.
    const wrongRoot: Transport = { ...(await fed.identity('test-bank', 'submitter')), ca: readFileSync(join(otherCa, 'ca.pem')) } as Transport;
    const distrusted = await probe(fed.cluster.address, wrongRoot);
    expect(distrusted).toContain("the coordinator's certificate is not signed by the CA in this identity's ca.pem");
    expect(distrusted).toContain("fix: put the federation CA's ca.pem in the identity folder");
    const withoutCert = new grpc.Client(fed.cluster.address, grpc.credentials.createSsl(readFileSync(join(pki(), 'ca.pem'))));
    await new Promise<void>((resolve) => withoutCert.waitForReady(Date.now() + 3000, () => resolve()));
    withoutCert.close();
    await new Promise((r) => setTimeout(r, 300));
    const log = logOf();
    expect(log).toMatch(/TLS handshake refused.*certificate expired|certificate expired.*TLS handshake refused/);
    expect(log).toMatch(/"reason":"certificate not issued by the federation CA"/);
    expect(log).toMatch(/"reason":"self-signed certificate"/);
    expect(log).toMatch(/"reason":"no client certificate"/);
  });

  it('a revoked certificate is refused once the revocation list changes, without restarting the coordinator', async () => {
    const leaver = await issue('leaving-bank', 'submitter');
    expect(await probe(fed.cluster.address, leaver)).toMatch(/no job/);
    await revokeCertificate(pki(), { organisation: 'leaving-bank' });
    const deadline = Date.now() + 10_000;
    let verdict = '';
    while (Date.now() < deadline) {
      verdict = await probe(fed.cluster.address, leaver);
      if (/cannot reach/.test(verdict)) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(verdict).toMatch(/cannot reach the coordinator/);
    expect(logOf()).toMatch(/certificate revocation list reloaded/);
    expect(logOf()).toMatch(/certificate revoked/);
  });

  it('roles: a participant cannot submit jobs, a submitter cannot join as a participant, nobody can claim another organisation', async () => {
    const participant = new CoordinatorClient(fed.cluster.address, await fed.identity('bank', 'participant'));
    await expect(participant.submitJob('name: x', 'bank')).rejects.toThrow(/bank \(certificate role participant\) may not submit jobs: that needs a submitter certificate/);
    participant.close();

    const Client = grpc.makeGenericClientConstructor(coordinatorServiceDefinition(), 'Coordinator');
    const connectAs = async (t: Transport, org: string, protocolVersion = PROTOCOL_VERSION) => {
      const client = dialed(Client, fed.cluster.address, t);
      const call = (client as unknown as { connect(): grpc.ClientDuplexStream<Uint8Array, unknown> }).connect();
      const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      call.on('error', () => undefined);
      call.on('data', () => undefined);
      for (const f of encodeFrames('ParticipantMessage', {
        jobId: '',
        round: 0,
        nonce: randomBytes(16),
        body: 'hello',
        hello: { organisation: org, softwareVersion: 't', protocolVersion, featureColumns: [], hasLabels: false },
      } as ParticipantMessage).frames)
        call.write(f);
      const s = await Promise.race([status, new Promise<grpc.StatusObject>((r) => setTimeout(() => r({ code: grpc.status.OK, details: 'still open', metadata: new grpc.Metadata() }), 3000))]);
      call.cancel();
      client.close();
      return s;
    };
    const asSubmitter = await connectAs(await fed.identity('test-bank', 'submitter'), 'test-bank');
    expect(asSubmitter.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(asSubmitter.details).toMatch(/may not open a participant control stream/);
    const impostor = await connectAs(await issue('tax-bureau', 'participant'), 'bank');
    expect(impostor.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(impostor.details).toMatch(/claims organisation bank but the certificate is tax-bureau's/);
    // A participant of an older wire (protocol version 1: before the collective key's shares of a party's own
    // gradient went without its bytes, and before a second offer of a held job was refused) is turned away at hello.
    const older = await connectAs(await issue('legacy-bank', 'participant'), 'legacy-bank', PROTOCOL_VERSION - 1);
    expect(older.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(older.details).toMatch(new RegExp(`legacy-bank speaks protocol version ${PROTOCOL_VERSION - 1}; this coordinator speaks ${PROTOCOL_VERSION}: upgrade the older side`));
  });

  it('a replayed message (a nonce the organisation already used) is refused with the reason', async () => {
    const Client = grpc.makeGenericClientConstructor(coordinatorServiceDefinition(), 'Coordinator');
    const client = dialed(Client, fed.cluster.address, await issue('replayer', 'participant'));
    const call = (client as unknown as { connect(): grpc.ClientDuplexStream<Uint8Array, Frame<{ body: string; error?: { message: string } }>> }).connect();
    const errors: string[] = [];
    call.on('data', (f) => {
      if (f.frame === 'message' && f.message?.body === 'error') errors.push(f.message.error!.message);
    });
    call.on('error', () => undefined);
    const send = (m: object) => {
      for (const f of encodeFrames('ParticipantMessage', m as ParticipantMessage).frames) call.write(f);
    };
    send({
      jobId: '',
      round: 0,
      nonce: randomBytes(16),
      body: 'hello',
      hello: { organisation: 'replayer', softwareVersion: 't', protocolVersion: PROTOCOL_VERSION, featureColumns: [], hasLabels: false },
    });
    const captured = { jobId: 'job-20990101-00000000', round: 3, nonce: randomBytes(16), body: 'error', error: { code: 'X', message: 'captured', hint: '' } };
    send(captured);
    send(captured);
    const deadline = Date.now() + 5000;
    while (errors.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    call.end();
    client.close();
    expect(errors[0]).toMatch(/unknown job job-20990101-00000000/);
    expect(errors[1]).toMatch(/replayed message refused: replayer already sent nonce [0-9a-f]{32} \(job job-20990101-00000000, round 3, error\)/);
  });

  it('only an auditor may copy the ledger over the network; the copy verifies', async () => {
    const out = mkdtempSync(join(tmpdir(), 'fedcredit-ledger-copy-'));
    const auditor = new CoordinatorClient(fed.cluster.address, await issue('regulator-2', 'auditor'));
    const files = await auditor.readLedger(out);
    auditor.close();
    expect(files).toContain('entries.log');
    const report = await verifyLedger(out);
    expect(report.ok, report.failure?.detail).toBe(true);
    const submitter = new CoordinatorClient(fed.cluster.address, await fed.identity('test-bank', 'submitter'));
    await expect(submitter.readLedger(mkdtempSync(join(tmpdir(), 'fedcredit-ledger-no-')))).rejects.toThrow(
      /test-bank \(certificate role submitter\) may not read the audit ledger: that needs an auditor certificate/,
    );
    submitter.close();
  });
});
