/**
 * Errors a user or a faulty peer can cause: each gets a clear message naming the cause, and the coordinator keeps
 * serving the honest participants.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { csvHead, TestFederation, UCI, horizontalJob, uciHomoSpec } from './helpers/federation.js';
import { RogueParticipant } from './helpers/rogue-participant.js';
import { ingestDataset } from '../src/data/csv.js';
import { CkksEngine } from '../src/he/engine.js';
import { HorizontalVectors } from '../src/he/horizontal.js';
import { generateKeys } from '../src/he/key-ceremony.js';
import { VectorCodec } from '../src/fl/vector-codec.js';
import * as grpc from '@grpc/grpc-js';
import { dialed } from '../src/wire/transport.js';
import { sha256 } from '../src/bytes.js';
import { encodeFrames, type Frame } from '../src/wire/framing.js';
import { coordinatorServiceDefinition } from '../src/wire/proto.js';
import type { DuplexCall } from '../src/wire/stream.js';
import type { CoordinatorMessage, ParticipantMessage } from '../src/wire/messages.js';
import { FedcreditError } from '../src/errors.js';
import { cli } from './helpers/cli.js';

// The first 1,000 rows of each UCI homo part: every property here is about a message, a refusal or a deadline, none
// about the model, and training on all 8,000 rows of a part each round only made the jobs slower.
const slices = mkdtempSync(join(tmpdir(), 'fedcredit-bad-input-'));
const [guest, host1, host2] = ['guest', 'host_1', 'host_2'].map((part) => csvHead(join(UCI, `fate_default_credit_homo_${part}.csv`), 1000, join(slices, `${part}.csv`))) as [string, string, string];
afterAll(() => rmSync(slices, { recursive: true, force: true }));

describe('a config with a missing or wrong field', () => {
  it('names the file, the field and how to fix it, and exits with status 2', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedcredit-cfg-'));
    const file = join(dir, 'participant.yaml');
    await writeFile(file, stringify({ coordinator: '127.0.0.1:7700', data: { ...uciHomoSpec(guest), id_column: undefined } }));
    const { code, stderr } = await cli(['participant', '--config', file]);
    expect(code).toBe(2);
    expect(stderr).toContain('FC_CONFIG_INVALID');
    expect(stderr).toContain(file);
    expect(stderr).toContain('`organisation`');
    expect(stderr).toContain('`data.id_column`');
    expect(stderr).toContain('the field is missing');
    expect(stderr).toContain('fix:');
  });

  it('a submit to a coordinator that is not running says so and how to fix it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedcredit-cfg-'));
    const file = join(dir, 'job.yaml');
    // Valid organisation names: job submit checks the job file before it dials anyone.
    await writeFile(file, stringify(horizontalJob({ participants: ['bank-a', 'bank-b'] })));
    // --insecure: what is tested is the unreachable address, not the identity check that would come first.
    const { code, stderr } = await cli(['job', 'submit', file, '--coordinator', '127.0.0.1:1', '--insecure']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/FC_UNAVAILABLE: cannot reach the coordinator at 127\.0\.0\.1:1/);
    expect(stderr).toContain('fix: check that `fedcredit coordinator` is running');
  });
});

describe('bad input during a federation (real coordinator, two honest participants, one broken, two rogue)', () => {
  let fed: TestFederation;
  const rogues: RogueParticipant[] = [];

  beforeAll(async () => {
    fed = await TestFederation.start([
      { name: 'bank-a', data: uciHomoSpec(guest) },
      { name: 'bank-b', data: uciHomoSpec(host1) },
      // Same columns as the others, but declares its first two in the other order: its schema differs. (A column
      // declared with a type its cells do not fit is refused when the participant loads its data.)
      { name: 'bank-typed', data: { ...uciHomoSpec(host2), features: [uciHomoSpec(host2).features[1]!, uciHomoSpec(host2).features[0]!, ...uciHomoSpec(host2).features.slice(2)] } },
      // Declares a column its CSV does not have.
      { name: 'bank-broken', data: { ...uciHomoSpec(host2), features: [...uciHomoSpec(host2).features, { name: 'vat_growth', type: 'number', missing: 'impute' }] } },
    ]);
    const rogueData = await ingestDataset(uciHomoSpec(host2), { dir: join(await mkdtemp(join(tmpdir(), 'fedcredit-rogue-')), 'rows') });
    const otherParams = await CkksEngine.create({ polyModulusDegree: 8192, coeffModulusBits: [50, 30, 50], scaleBits: 30 });
    const otherKeys = generateKeys(otherParams, 'lead');
    rogues.push(
      new RogueParticipant('rogue-params', rogueData, (_honest, values) => VectorCodec.ckks(new HorizontalVectors(otherParams)).encode(values, otherKeys)),
      new RogueParticipant('rogue-truncated', rogueData, (honest) => {
        const cut = honest.blocks[0]!.subarray(0, Math.floor(honest.blocks[0]!.length / 2));
        return { ...honest, blocks: [cut], blockSha256: [sha256(cut)] };
      }),
    );
    rogues.push(
      // Honest but slow: its updates arrive 2.5 s late, within the 6 s deadline.
      new RogueParticipant('bank-slow', rogueData, async (honest) => {
        await new Promise((r) => setTimeout(r, 2500));
        return honest;
      }),
    );
    for (const r of rogues) await r.connect(fed.cluster.address, await fed.identity(r.organisation, 'participant'));
  });
  afterAll(async () => {
    for (const r of rogues) r.close();
    await fed?.stop();
  });

  it('a CSV that does not match its schema stops that participant with the missing column named', async () => {
    const child = fed.cluster.process('bank-broken')!;
    const code = child.exitCode ?? (await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? -1))));
    expect(code).toBe(2);
    const log = await readFile(join(fed.dir, 'logs', 'bank-broken.log'), 'utf8');
    expect(log).toContain('FC_DATA_SCHEMA');
    expect(log).toContain('vat_growth');
  });

  it('ciphertexts under other CKKS parameters and truncated ciphertexts are refused with their cause; the job completes with the honest participants', async () => {
    const job = horizontalJob({ participants: ['bank-a', 'bank-b', 'rogue-params', 'rogue-truncated'], training: { rounds: 3, min_participants: 2 } });
    const result = await fed.run(job);
    result.client.close();
    expect(result.last.state, result.last.message).toBe('succeeded');
    const rounds = result.events.filter((e) => e.progress).map((e) => e.progress!);
    expect(rounds).toHaveLength(3);
    for (const r of rounds) {
      expect(r.participants.sort()).toEqual(['bank-a', 'bank-b']);
      const dropped = r.dropped.join('\n');
      expect(dropped).toMatch(/rogue-params \(.*CKKS parameters that differ/);
      expect(dropped).toMatch(/rogue-truncated \(.*(truncated|header declares)/);
    }
    // Each rogue was told why, with a stable code.
    expect(rogues[0]!.errors.map((e) => e.code)).toContain('FC_CKKS_PARAMS');
    expect(rogues[1]!.errors.map((e) => e.code)).toContain('FC_CIPHERTEXT_INVALID');
    // And the coordinator still serves a clean job afterwards.
    const clean = await fed.run(horizontalJob({ participants: ['bank-a', 'bank-b'], training: { rounds: 1 } }));
    clean.client.close();
    expect(clean.last.state).toBe('succeeded');
  });

  it('a job file with a bad value is refused at submission with the field named', async () => {
    const client = await fed.client();
    const bad = { ...horizontalJob({ participants: ['bank-a'] }), training: { rounds: -3 } };
    const err = await client.submitJob(stringify(bad), 'test-bank').catch((e: unknown) => e as FedcreditError);
    client.close();
    expect(err).toBeInstanceOf(FedcreditError);
    expect((err as FedcreditError).code).toBe('FC_CONFIG_INVALID');
    expect((err as FedcreditError).message).toContain('`training.rounds`');
  });

  it('a stream that has not said Hello cannot make the coordinator buffer a large chunked message', async () => {
    const Client = grpc.makeGenericClientConstructor(coordinatorServiceDefinition(), 'Coordinator');
    const client = dialed(Client, fed.cluster.address, await fed.identity('bank-chatty', 'participant'));
    const call = (client as unknown as { connect(): DuplexCall<Frame<CoordinatorMessage>, Uint8Array> }).connect();
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status' as 'end', resolve as never));
    call.on('error', () => undefined);
    const big = new Uint8Array(2 * 1024 * 1024).fill(7); // 2 MiB: sent as two 1 MiB chunks
    const vector = { scheme: 'ckks' as const, length: 1, blocks: [big], paramsFingerprint: new Uint8Array(32), blockSha256: [sha256(big)] };
    for (const frame of encodeFrames('ParticipantMessage', { jobId: 'x', round: 1, nonce: new Uint8Array(16), body: 'contribution', contribution: { purpose: 'update', vector } } as ParticipantMessage)
      .frames) {
      call.write(frame);
    }
    const result = await status;
    client.close();
    expect(result.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(result.details).toMatch(/exceeds the 65536-byte message limit/);
  });

  it('a straggler is shown to watchers while the round waits for it, and still counted when it arrives in time', async () => {
    const result = await fed.run(horizontalJob({ participants: ['bank-a', 'bank-b', 'bank-slow'], training: { rounds: 2, round_timeout_s: 6 } }));
    result.client.close();
    expect(result.last.state, result.last.message).toBe('succeeded');
    const waiting = result.events.filter((e) => /round \d+: waiting for bank-slow \(late: \d+s so far, deadline in \d+s\)/.test(e.message));
    expect(waiting.length).toBeGreaterThanOrEqual(2);
    for (const r of result.events.filter((e) => e.progress)) expect(r.progress!.participants).toContain('bank-slow');
  });

  it('participants whose declared schemas differ make the job fail before any data is used, naming the participant', async () => {
    const result = await fed.run(horizontalJob({ participants: ['bank-a', 'bank-typed'], training: { rounds: 1 } }));
    result.client.close();
    expect(result.last.state).toBe('failed');
    expect(result.last.message).toMatch(/FC_JOB_INVALID: participant bank-typed's feature schema differs from bank-a's/);
    expect(result.events.some((e) => e.progress)).toBe(false);
  });

  it('asking about a job that does not exist says so', async () => {
    const client = await fed.client();
    const err = await client.getJob('job-nope').catch((e: unknown) => e as FedcreditError);
    client.close();
    expect((err as FedcreditError).code).toBe('FC_NOT_FOUND');
    expect((err as FedcreditError).message).toContain('no job job-nope');
  });

  it('a job naming a participant that refuses (consent) fails with the rule named', async () => {
    const result = await fed.run(horizontalJob({ participants: ['bank-a', 'bank-b'], training: { rounds: 2000 } }));
    result.client.close();
    expect(result.last.state).toBe('failed');
    expect(result.last.message).toMatch(/did not accept the job: refused \(consent\.max_rounds\)/);
  }, 60_000);
});
