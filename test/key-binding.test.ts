/**
 * Keys bound to certificates, and a coordinator that deviates. Every per-job key a party receives through the
 * coordinator must carry its owner's signature (src/crypto/key-binding.ts), and every relayed box its sender's
 * authentication (src/crypto/sealed-box.ts). The end-to-end tests put a coordinator test double with the real
 * coordinator's certificate in front of unmodified participant processes, swap a key, and check that the swap is
 * caught, named, and that nothing was sealed to the double's key: what the double holds opens nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signBinding, specDigest, verifyBinding, type BindingStatement } from '../src/crypto/key-binding.js';
import { generateBoxKeyPair, open, seal } from '../src/crypto/sealed-box.js';
import { initCa, issueCertificate, revokeCertificate } from '../src/pki/ca.js';
import { identityDir, writeFederationPki } from '../src/federation/pki-layout.js';
import { identityFromDir, jobBinding, type Transport } from '../src/wire/transport.js';
import { JobSpec } from '../src/config/schemas.js';
import type { ParticipantMessage, Recipient } from '../src/wire/messages.js';
import { DATASETS, horizontalJob, HOMO_PARTIES, TestFederation, uciHomoSpec } from './helpers/federation.js';
import { uciHomoFile } from '../src/data/public-datasets.js';
import { bankTaxSetup, uciHeteroSpec, verticalJob } from './helpers/vertical.js';
import { RogueCoordinator } from './helpers/rogue-coordinator.js';
import { Approvals } from '../participant/approvals.js';
import { PartyChannel } from '../participant/vertical-channel.js';
import { createLogger } from '../src/log.js';
import { hex } from '../src/bytes.js';
import type { EphemeralFederation } from '../src/federation/ephemeral.js';

const mtls = (t: Transport) => t as Extract<Transport, { kind: 'mtls' }>;

describe("key bindings: a key signed by its owner's certificate for one job", () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedcredit-binding-'));
  let bank: Transport;
  let bureau: Transport;
  let submitter: Transport;
  let outsider: Transport;
  const spec = '{"kind":"vertical-lr","guest":"bank","hosts":["tax-bureau"]}';
  const key = generateBoxKeyPair().publicKey;
  const statement = (over: Partial<BindingStatement> = {}): BindingStatement => ({ purpose: 'box-key', jobId: 'job-1', specSha256: specDigest(spec), organisation: 'tax-bureau', key, ...over });

  beforeAll(async () => {
    await writeFederationPki(dir, ['bank', 'tax-bureau']);
    bank = identityFromDir(identityDir(dir, 'bank', 'participant'));
    bureau = identityFromDir(identityDir(dir, 'tax-bureau', 'participant'));
    await issueCertificate(join(dir, 'pki'), { organisation: 'tax-bureau', role: 'submitter', outDir: identityDir(dir, 'tax-bureau', 'submitter') });
    submitter = identityFromDir(identityDir(dir, 'tax-bureau', 'submitter'));
    await initCa(join(dir, 'other-ca'), { name: 'another federation' });
    await issueCertificate(join(dir, 'other-ca'), { organisation: 'tax-bureau', role: 'participant', outDir: join(dir, 'other-ca', 'tax-bureau') });
    outsider = identityFromDir(join(dir, 'other-ca', 'tax-bureau'));
  });

  const sign = (t: Transport, s = statement()) => signBinding({ certificate: mtls(t).cert, key: mtls(t).key }, s);
  const trust = () => ({ ca: mtls(bank).ca });

  it("verifies the owner's signature over the job, the spec, the owner and the key", () => {
    expect(() => verifyBinding(sign(bureau), statement(), trust())).not.toThrow();
  });

  it('refuses, naming the party and the check: another key, job, spec or purpose; no signature', () => {
    const binding = sign(bureau);
    const swapped = generateBoxKeyPair().publicKey;
    expect(() => verifyBinding(binding, statement({ key: swapped }), trust())).toThrow(
      /tax-bureau's per-job box key in job job-1 is not bound to tax-bureau's certificate: the signature does not match/,
    );
    expect(() => verifyBinding(binding, statement({ jobId: 'job-2' }), trust())).toThrow(/FC_KEY_BINDING|signature does not match/);
    expect(() => verifyBinding(binding, statement({ specSha256: specDigest(spec.replace('tax-bureau', 'platform')) }), trust())).toThrow(/tax-bureau signed it for the job's spec with SHA-256/);
    // The digest the binding names is not what is trusted: altered to the receiver's, the signature still fails.
    expect(() =>
      verifyBinding({ ...binding, specSha256: specDigest(spec.replace('tax-bureau', 'platform')) }, statement({ specSha256: specDigest(spec.replace('tax-bureau', 'platform')) }), trust()),
    ).toThrow(/signature does not match/);
    // Nor is a digest the owner never signed named as its: the claim of an equivocation is only made when it is proven.
    const unsigned = specDigest(spec.replace('tax-bureau', 'other'));
    expect(() => verifyBinding({ ...binding, specSha256: unsigned }, statement({ specSha256: specDigest(spec.replace('tax-bureau', 'platform')) }), trust())).toThrow(
      /is not bound to tax-bureau's certificate: the signature does not match/,
    );
    // Altered alone, the unsigned field cannot get a key the owner signed for this spec refused.
    expect(() => verifyBinding({ ...binding, specSha256: unsigned }, statement(), trust())).not.toThrow();
    expect(() => verifyBinding(binding, statement({ purpose: 'ckks-public-key' }), trust())).toThrow(/signature does not match/);
    expect(() => verifyBinding(null, statement(), trust())).toThrow(/carries no certificate or signature/);
  });

  it('refuses a certificate of another organisation, another role or another CA, and a revoked one', async () => {
    expect(() => verifyBinding(sign(bank, statement({ organisation: 'bank' })), statement(), trust())).toThrow(/the certificate is bank's, not tax-bureau's/);
    expect(() => verifyBinding(sign(submitter), statement(), trust())).toThrow(/for the role submitter, not participant/);
    expect(() => verifyBinding(sign(outsider), statement(), trust())).toThrow(/certificate is refused \(wrong-ca/);
    await revokeCertificate(join(dir, 'pki'), { organisation: 'tax-bureau', role: 'participant' });
    const withCrl = jobBinding({ ...mtls(bank), crlFile: join(dir, 'pki', 'crl.pem') }, spec, ['bank', 'tax-bureau'])!;
    expect(() => verifyBinding(sign(bureau), statement(), withCrl.trust)).toThrow(/certificate is refused \(revoked/);
  });

  it("a coordinator that offers two parties different specs of one job: each refuses the other's key, naming both spec digests, and installs no keys", async () => {
    // The guest is offered the job as submitted; the host the same job asking it to share its features' statistics.
    const specs = { bank: JSON.stringify(JobSpec.parse(verticalJob())), 'tax-bureau': JSON.stringify(JobSpec.parse({ ...verticalJob(), statistics: true })) };
    const handler = { execute: async () => ({}), stateDigest: () => new Uint8Array(), beginStep: () => undefined };
    const io = { relay: async () => undefined, decrypt: async () => undefined };
    const channels = Object.fromEntries(
      (
        [
          ['bank', bank],
          ['tax-bureau', bureau],
        ] as const
      ).map(([org, t]) => {
        const channel = new PartyChannel('job-1', org, 'bank', io, createLogger('test', 'silent'), 60_000, handler);
        channel.binding = jobBinding(t, specs[org], ['bank', 'tax-bureau']);
        return [org, channel];
      }),
    );
    // Each party's key, signed by it over the spec it was offered, relayed unchanged in one setup.
    const setup = { ...bankTaxSetup(), parties: Object.entries(channels).map(([organisation, c]) => ({ organisation, boxPublicKey: c.box.publicKey, binding: c.boxKeyBinding() })) };
    const digest = (org: keyof typeof specs) => hex(specDigest(specs[org]));
    await expect(channels.bank!.install(setup)).rejects.toMatchObject({
      code: 'FC_KEY_BINDING',
      message: `tax-bureau's per-job box key in job job-1 is not bound to tax-bureau's certificate: tax-bureau signed it for the job's spec with SHA-256 ${digest('tax-bureau')}, and this node accepted the spec with SHA-256 ${digest('bank')}; nothing was sealed to it or encrypted under it`,
      hint: expect.stringMatching(/^the coordinator offered the parties different specs of one job \(equivocation\)/),
    });
    await expect(channels['tax-bureau']!.install(setup)).rejects.toThrow(
      `bank signed it for the job's spec with SHA-256 ${digest('bank')}, and this node accepted the spec with SHA-256 ${digest('tax-bureau')}`,
    );
    // Neither has keys to seal anything with: a step finds no setup.
    for (const c of Object.values(channels)) expect(() => c.guest).toThrow(/before the job's setup reached it/);
  });

  it("an authenticated box opens only with its sender's key; an unauthenticated one is refused where a sender is expected", () => {
    const alice = generateBoxKeyPair();
    const bob = generateBoxKeyPair();
    const mallory = generateBoxKeyPair();
    const box = seal(Buffer.from('fore-gradient'), bob.publicKey, 'job|alice|bob', alice);
    expect(Buffer.from(open(box, bob, 'job|alice|bob', alice.publicKey)).toString()).toBe('fore-gradient');
    expect(() => open(box, bob, 'job|alice|bob', mallory.publicKey)).toThrow(/authentication failed/);
    expect(() => open(seal(Buffer.from('x'), bob.publicKey, 'job|alice|bob', mallory), bob, 'job|alice|bob', alice.publicKey)).toThrow(/authentication failed/);
    expect(() => open(seal(Buffer.from('x'), bob.publicKey, 'job|alice|bob'), bob, 'job|alice|bob', alice.publicKey)).toThrow(/does not authenticate its sender/);
    expect(() => open(box, mallory, 'job|alice|bob', alice.publicKey)).toThrow(/authentication failed/);
  });
});

/** Stop a federation's real coordinator and put the double on its address, with its certificate. */
async function rogueInFront(fed: EphemeralFederation, parties: string[]): Promise<RogueCoordinator> {
  await fed.cluster.kill('coordinator');
  const rogue = await RogueCoordinator.start(fed.cluster.address, identityFromDir(identityDir(fed.dir, 'coordinator', 'coordinator')));
  await rogue.waitConnected(parties, 90_000);
  return rogue;
}

const errorOf = (m: ParticipantMessage) => (m.body === 'error' ? m.error : undefined);

describe('a coordinator that swaps keys is caught before anything is sealed to its key', () => {
  const feds: EphemeralFederation[] = [];
  const rogues: RogueCoordinator[] = [];
  afterAll(async () => {
    for (const r of rogues) await r.close();
    for (const f of feds) await f.stop();
  });

  it('vertical: the guest refuses a host key the host did not sign, names it, and seals nothing; a party refuses a second offer of the job', async () => {
    const fed = await TestFederation.start([
      { name: 'bank', data: uciHeteroSpec('guest') },
      { name: 'tax-bureau', data: uciHeteroSpec('host') },
    ]);
    feds.push(fed);
    const rogue = await rogueInFront(fed, ['bank', 'tax-bureau']);
    rogues.push(rogue);
    const specJson = JSON.stringify(JobSpec.parse(verticalJob()));
    const jobId = 'job-swapped-vertical';
    for (const org of ['bank', 'tax-bureau']) await rogue.send(org, { jobId, round: 0, body: 'jobOffer', jobOffer: { specJson, submitter: 'test-bank', lead: 'bank' } });
    const accepted = new Map<string, Recipient>();
    for (const org of ['bank', 'tax-bureau']) {
      const m = await rogue.waitFor(org, (x) => x.jobId === jobId && x.body === 'jobAccepted');
      if (m.body !== 'jobAccepted') throw new Error('unreachable');
      expect(m.jobAccepted.boxKeyBinding?.certificate.length, `${org} signs its key`).toBeGreaterThan(0);
      accepted.set(org, { organisation: org, boxPublicKey: m.jobAccepted.boxPublicKey, binding: m.jobAccepted.boxKeyBinding });
    }
    // A second offer of the job, which would reset the host's job (its box key, and the setup it would check), is refused.
    await rogue.send('tax-bureau', { jobId, round: 0, body: 'jobOffer', jobOffer: { specJson, submitter: 'test-bank', lead: 'bank' } });
    const again = await rogue.waitFor('tax-bureau', (x) => x.jobId === jobId && x.body === 'jobRefused');
    expect(again.body === 'jobRefused' && again.jobRefused.reason).toMatch(/tax-bureau already holds job job-swapped-vertical; a second offer of the same job is refused/);
    expect(rogue.received.filter((r) => r.org === 'tax-bureau' && r.message.body === 'jobAccepted')).toHaveLength(1);
    // The double's own key in place of the host's, with the host's real signature (over the host's real key).
    const double = generateBoxKeyPair();
    const parties = [accepted.get('bank')!, { ...accepted.get('tax-bureau')!, boxPublicKey: double.publicKey }];
    await rogue.send('bank', {
      jobId,
      round: 0,
      body: 'verticalSetup',
      verticalSetup: { ckksPublicKey: new Uint8Array(), galoisKeys: new Uint8Array(), paramsFingerprint: new Uint8Array(), parties, guest: 'bank', hosts: ['tax-bureau'], psiSalt: new Uint8Array(32) },
    });
    const refusal = errorOf(await rogue.waitFor('bank', (x) => x.jobId === jobId && x.body === 'error'));
    expect(refusal?.code).toBe('FC_KEY_BINDING');
    expect(refusal?.message).toMatch(/tax-bureau's per-job box key in job job-swapped-vertical is not bound to tax-bureau's certificate: the signature does not match/);
    // The double asks for the PSI anyway: the guest has dropped the job, says so at once (the coordinator does not wait
    // out a step deadline), and sends nothing sealed to anyone.
    await rogue.send('bank', { jobId, round: 1, body: 'stepRequest', stepRequest: { step: 'psi', attempt: 0, epoch: 0, batch: 0, argsJson: '{}' } });
    const dropped = errorOf(await rogue.waitFor('bank', (x) => x.jobId === jobId && x.body === 'error' && x.round === 1));
    expect(dropped?.message).toMatch(/bank does not hold vertical job job-swapped-vertical: it dropped it/);
    expect(dropped?.hint).toBe('resubmit the job');
    const relays = rogue.received.filter((r) => r.org === 'bank' && r.message.body === 'relay');
    expect(relays).toEqual([]);
  });

  it("a second offer while the owner's approval is pending is refused: the owner approves the offer the node runs, and one key goes out", async () => {
    const fed = await TestFederation.start([
      { name: 'bank', data: uciHeteroSpec('guest') },
      { name: 'tax-bureau', data: uciHeteroSpec('host'), consent: { approval: 'manual', approval_timeout_s: 120 } },
    ]);
    feds.push(fed);
    const rogue = await rogueInFront(fed, ['bank', 'tax-bureau']);
    rogues.push(rogue);
    const jobId = 'job-offered-twice';
    const offer = (name: string) => ({ specJson: JSON.stringify(JobSpec.parse({ ...verticalJob(), name, purpose: `${name}: what the owner is shown` })), submitter: 'test-bank', lead: 'bank' });
    const approvals = new Approvals(join(fed.dir, 'fedcredit-state', 'tax-bureau'));
    await rogue.send('tax-bureau', { jobId, round: 0, body: 'jobOffer', jobOffer: offer('first') });
    const deadline = Date.now() + 30_000;
    while (approvals.pending().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // A second offer of the same job, another spec: refused at once, and the owner is still shown the first.
    await rogue.send('tax-bureau', { jobId, round: 0, body: 'jobOffer', jobOffer: offer('second') });
    const refused = await rogue.waitFor('tax-bureau', (x) => x.jobId === jobId && x.body === 'jobRefused');
    expect(refused.body === 'jobRefused' && refused.jobRefused.reason).toMatch(/tax-bureau was offered job job-offered-twice already; a second offer of the same job is refused/);
    expect(approvals.pending().map((p) => p.name)).toEqual(['first']);
    approvals.decide(jobId, true, 'approved');
    const accepted = await rogue.waitFor('tax-bureau', (x) => x.jobId === jobId && x.body === 'jobAccepted');
    expect(accepted.body).toBe('jobAccepted');
    expect(JSON.parse(readFileSync(join(fed.dir, 'fedcredit-state', 'tax-bureau', 'jobs', jobId, 'job.json'), 'utf8')).spec.name).toBe('first');
    expect(rogue.received.filter((r) => r.org === 'tax-bureau' && r.message.jobId === jobId).map((r) => r.message.body)).toEqual(['jobRefused', 'jobAccepted']);
  });

  it('horizontal: the lead seals the secret key to no swapped key, and a participant refuses a public key or a box the lead did not make', async () => {
    const names = ['bank-a', 'bank-b', 'bank-c'];
    const fed = await TestFederation.start(names.map((name, i) => ({ name, data: uciHomoSpec(uciHomoFile(DATASETS, HOMO_PARTIES[i]!)) })));
    feds.push(fed);
    const rogue = await rogueInFront(fed, names);
    rogues.push(rogue);
    const specJson = JSON.stringify(JobSpec.parse(horizontalJob({ participants: names })));
    const jobId = 'job-swapped-horizontal';
    for (const org of names) await rogue.send(org, { jobId, round: 0, body: 'jobOffer', jobOffer: { specJson, submitter: 'test-bank', lead: 'bank-a' } });
    const accepted = new Map<string, Recipient>();
    for (const org of names) {
      const m = await rogue.waitFor(org, (x) => x.jobId === jobId && x.body === 'jobAccepted');
      if (m.body !== 'jobAccepted') throw new Error('unreachable');
      accepted.set(org, { organisation: org, boxPublicKey: m.jobAccepted.boxPublicKey, binding: m.jobAccepted.boxKeyBinding });
    }
    const double = generateBoxKeyPair();
    const swapped = [{ ...accepted.get('bank-b')!, boxPublicKey: double.publicKey }, accepted.get('bank-c')!];
    await rogue.send('bank-a', { jobId, round: 0, body: 'keygenRequest', keygenRequest: { recipients: swapped } });
    const refusal = errorOf(await rogue.waitFor('bank-a', (x) => x.jobId === jobId && x.body === 'error'));
    expect(refusal?.code).toBe('FC_KEY_BINDING');
    expect(refusal?.message).toMatch(/bank-b's per-job box key in job job-swapped-horizontal is not bound to bank-b's certificate/);
    expect(rogue.received.some((r) => r.org === 'bank-a' && r.message.body === 'keysPublished')).toBe(false);

    // Asked honestly, the lead seals the key to the real recipients: the double's key opens none of the boxes.
    await rogue.send('bank-a', { jobId, round: 0, body: 'keygenRequest', keygenRequest: { recipients: [accepted.get('bank-b')!, accepted.get('bank-c')!] } });
    const published = await rogue.waitFor('bank-a', (x) => x.jobId === jobId && x.body === 'keysPublished');
    if (published.body !== 'keysPublished') throw new Error('unreachable');
    const keys = published.keysPublished;
    for (const box of keys.sealedSecretKeys) {
      expect(() => open(box.sealed, double, `${jobId}|${box.recipient}`, accepted.get('bank-a')!.boxPublicKey)).toThrow(/authentication failed/);
    }
    // A CKKS public key of the double's making (here: the lead's, altered) is refused before anything is encrypted under it.
    const forgedKey = Uint8Array.from(keys.ckksPublicKey);
    forgedKey[forgedKey.length - 1]! ^= 1;
    const boxB = keys.sealedSecretKeys.find((k) => k.recipient === 'bank-b')!.sealed;
    await rogue.send('bank-b', {
      jobId,
      round: 0,
      body: 'keyDelivery',
      keyDelivery: { ckksPublicKey: forgedKey, sealedSecretKey: boxB, paramsFingerprint: keys.paramsFingerprint, lead: accepted.get('bank-a')!, publicKeyBinding: keys.publicKeyBinding },
    });
    const refusedKey = errorOf(await rogue.waitFor('bank-b', (x) => x.jobId === jobId && x.body === 'error'));
    expect(refusedKey?.code).toBe('FC_KEY_BINDING');
    expect(refusedKey?.message).toMatch(/bank-a's CKKS public key in job job-swapped-horizontal is not bound to bank-a's certificate/);
    // A secret key the double sealed itself (claiming to be the lead) does not open.
    const fakeBox = seal(new Uint8Array(64), accepted.get('bank-c')!.boxPublicKey, `${jobId}|bank-c`, double);
    await rogue.send('bank-c', {
      jobId,
      round: 0,
      body: 'keyDelivery',
      keyDelivery: { ckksPublicKey: keys.ckksPublicKey, sealedSecretKey: fakeBox, paramsFingerprint: keys.paramsFingerprint, lead: accepted.get('bank-a')!, publicKeyBinding: keys.publicKeyBinding },
    });
    const refusedBox = errorOf(await rogue.waitFor('bank-c', (x) => x.jobId === jobId && x.body === 'error'));
    expect(refusedBox?.code).toBe('FC_KEY_UNSEAL');
  });
});
