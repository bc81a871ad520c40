/**
 * The arbiter's own rules for a vertical party's decryption requests (coordinator/vertical-run.ts), on the real
 * coordinator's job: a VerticalRun in one process whose parties are doubles that answer its offer and PSI step, then,
 * in the first mini-batch, ask the arbiter for more than the protocol gives a party. Every message goes through the
 * wire encoding. The opener is the plaintext scheme's (the rules come before any opener: under ckks and
 * ckks-threshold they are the same lines), so each refused request is seen to open nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { VerticalRun } from '../coordinator/vertical-run.js';
import type { SessionRegistry } from '../coordinator/job-base.js';
import { JobSpec, type VerticalJobSpec } from '../src/config/schemas.js';
import { generateBoxKeyPair } from '../src/crypto/sealed-box.js';
import { float64Bytes, toFloat64 } from '../src/fl/vector-codec.js';
import { residueClassSums } from '../src/he/packing.js';
import { Ledger } from '../src/ledger/ledger.js';
import { PLAINTEXT_SLOTS } from '../src/vertical/cipher.js';
import { encodeFrames } from '../src/wire/framing.js';
import type { CoordinatorMessage, ParticipantMessage, ParticipantReply } from '../src/wire/messages.js';
import { overTheWire } from './helpers/memory-horizontal.js';
import { verticalJob } from './helpers/vertical.js';

const COLUMNS: Record<string, string[]> = { bank: ['g1', 'g2', 'g3'], 'tax-bureau': ['h1', 'h2'] };
/** What the arbiter pins each party's count to: its columns, and the intercept for the guest. */
const GRADIENT_LENGTH: Record<string, number> = { bank: 4, 'tax-bureau': 2 };

describe("the arbiter's rules for decryption requests, on the coordinator's vertical job with party doubles", () => {
  let dir: string;
  let ledger: Ledger;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedcredit-arbiter-'));
    ledger = await Ledger.open(join(dir, 'ledger'), 'coordinator', join(dir, 'keys', 'ledger-ed25519.pem'));
  });
  afterAll(async () => {
    await ledger?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("opens one gradient per party per step, of exactly its columns' count; a second request and any other count are refused, naming the rule, and open nothing", async () => {
    const spec = JobSpec.parse(verticalJob({ encryption: { scheme: 'plaintext' }, training: { epochs: 1, batch_size: 64 } })) as VerticalJobSpec;
    const toParty = new Map<string, CoordinatorMessage[]>([...Object.keys(COLUMNS)].map((org) => [org, []]));
    let run: VerticalRun;
    const reply = (org: string, to: CoordinatorMessage, body: ParticipantReply) => {
      const message = { jobId: to.jobId, round: to.round, nonce: new Uint8Array(16), ...body } as ParticipantMessage;
      run.deliver(org, overTheWire<ParticipantMessage>(encodeFrames('ParticipantMessage', message), 'ParticipantFrame', 'ParticipantMessage'));
    };
    /** The first mini-batch's step request, once both parties have it: the test asks from there. */
    type StepMessage = CoordinatorMessage & { body: 'stepRequest' };
    let inBatch: (m: StepMessage) => void = () => undefined;
    const batch = new Promise<StepMessage>((resolve) => {
      inBatch = resolve;
    });
    const sessions: SessionRegistry = {
      isConnected: () => true,
      waitConnected: async () => true,
      declaredFeatures: (org) => COLUMNS[org]!,
      send: async (org, sent) => {
        const m = overTheWire<CoordinatorMessage>('frames' in sent ? sent : encodeFrames('CoordinatorMessage', sent), 'CoordinatorFrame', 'CoordinatorMessage');
        toParty.get(org)!.push(m);
        if (m.body === 'jobOffer') {
          const accepted = {
            trainRows: 80,
            validationRows: 10,
            schemaHash: new Uint8Array(32),
            boxPublicKey: generateBoxKeyPair().publicKey,
            loadReport: '',
            idSetSha256: new Uint8Array(32),
            boxKeyBinding: null,
          };
          queueMicrotask(() => reply(org, m, { body: 'jobAccepted', jobAccepted: accepted }));
        }
        if (m.body === 'stepRequest' && m.stepRequest.step === 'psi') {
          const report = org === spec.guest ? { intersection: 100, train: 80, validation: 10, test: 10 } : { intersection: 100 };
          queueMicrotask(() => reply(org, m, { body: 'stepDone', stepDone: { step: 'psi', attempt: m.stepRequest.attempt, stateSha256: new Uint8Array(32), reportJson: JSON.stringify(report) } }));
        }
        if (m.body === 'stepRequest' && m.stepRequest.step === 'batch' && org === spec.hosts[0]) inBatch(m);
      },
    };
    run = new VerticalRun('job-arbiter', spec, 'bank', { sessions, log: pino({ level: 'silent' }), stateDir: dir, offerTimeoutMs: 10_000, ledger });
    const running = run.run();
    const step = await batch;

    /** Each party's answers to its decryption requests of the step, in order: opened values, or the refusal. */
    const answers = (org: string) => toParty.get(org)!.filter((m) => m.round === step.round && (m.body === 'decryptReply' || m.body === 'error'));
    const ask = async (org: string, count: number, slots: Float64Array) => {
      const before = answers(org).length;
      reply(org, step, { body: 'decryptRequest', decryptRequest: { attempt: step.stepRequest.attempt, ciphertext: float64Bytes(slots), count } });
      await expect.poll(() => answers(org).length).toBe(before + 1);
      const answer = answers(org)[before]!;
      // The refusal as the party reads it, or the values opened.
      return answer.body === 'decryptReply' ? Array.from(toFloat64(answer.decryptReply.values)) : answer.body === 'error' ? answer.error : undefined;
    };
    const slots = Float64Array.from({ length: PLAINTEXT_SLOTS }, (_, i) => i);

    // A count other than the party's columns: every slot (the party's per-record partial sums), or one more class.
    for (const count of [PLAINTEXT_SLOTS, 5]) expect(await ask('bank', count, slots)).toMatchObject({ code: 'FC_PROTOCOL', message: `bank asked for ${count} gradient values; its 4 columns give 4` });
    expect(await ask('tax-bureau', 4, slots)).toMatchObject({ message: 'tax-bureau asked for 4 gradient values; its 2 columns give 2' });
    // Its own count: the class sums of its masked gradient, once. Refusals above used none of it up.
    for (const [org, count] of Object.entries(GRADIENT_LENGTH)) expect(await ask(org, count, slots), org).toEqual(Array.from(residueClassSums(slots, count)));
    // A second request in the step, even of another ciphertext, is refused: two openings would give the difference.
    for (const org of Object.keys(GRADIENT_LENGTH))
      expect(
        await ask(
          org,
          GRADIENT_LENGTH[org]!,
          slots.map((v) => v + 1),
        ),
      ).toMatchObject({ code: 'FC_PROTOCOL', message: `${org} already had a gradient decrypted in step ${step.round}` });

    // The test is over: a party fails the step, and the job ends.
    reply('bank', step, { body: 'error', error: { code: 'FC_JOB_FAILED', message: 'test over', hint: '' } });
    await running;
    expect(run.state).toBe('failed');
  });
});
