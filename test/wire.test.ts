/**
 * The wire protocol: every message in proto/fedcredit/v1/federation.proto survives encoding with every field
 * intact (so messages.ts and the proto cannot drift apart), large messages travel as chunks that reassemble
 * exactly or fail loudly, and over real gRPC a payload far beyond gRPC's 4 MB default arrives byte for byte.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { createHash, randomBytes } from 'node:crypto';
import { CHANNEL_OPTIONS, coordinatorServiceDefinition, decodeMessage, encodeMessage, FLOW_CONTROL_WINDOW_BYTES, messageType, protoRoot, widenServerWindows } from '../src/wire/proto.js';
import { connect } from 'node:http2';
import { sha256 } from '../src/bytes.js';
import { CHUNK_BYTES, encodeFrames, Reassembler, type Frame } from '../src/wire/framing.js';
import { FramedStream, type DuplexCall } from '../src/wire/stream.js';
import { FedcreditError } from '../src/errors.js';
import type { FeatureBins, Preprocessing } from '../src/model/preprocess.js';
import type {
  AggregateOpened,
  AggregateReady,
  Chunk,
  Contribution,
  ContributionRequest,
  CoordinatorFrame,
  CoordinatorMessage,
  EncryptedVector,
  ErrorReport,
  Hello,
  JobAccepted,
  JobEnded,
  JobEvent,
  JobIdRequest,
  JobOffer,
  JobRefused,
  JobStatus,
  KeyDelivery,
  KeygenRequest,
  KeysPublished,
  ParticipantFrame,
  ParticipantMessage,
  Receipt,
  Recipient,
  PeerEnvelope,
  DecryptRequest,
  StepDone,
  ThresholdCeremony,
  GradientShare,
  GradientShareRequest,
  KeyShareEntry,
  DecryptionShares,
  DecryptReply,
  VerticalSetup,
  StepRequest,
  RoundProgress,
  SealedKey,
  SubmitJobRequest,
  SubmitJobResponse,
  ValidationMetrics,
  Welcome,
} from '../src/wire/messages.js';

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + 1) & 0xff);
const digestOf = (b: Uint8Array): Uint8Array => createHash('sha256').update(b).digest();

/**
 * Deep copy with every byte field (Uint8Array or Buffer) replaced by its content as hex, so bytes compare by
 * content whatever their class; a string compares in one step, where element-wise equality of multi-megabyte
 * buffers would take the test runner minutes.
 */
function normalise(value: unknown): unknown {
  if (value instanceof Uint8Array) return `bytes:${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
  if (Array.isArray(value)) return value.map(normalise);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v)]));
  return value;
}

// ---------------------------------------------------------------------------------------------------------
// One fully populated sample per message type: every scalar off its default, every repeated field with two or
// more entries, every nested message set. Numbers probe the edges of their wire types (uint32 above 2^31,
// uint64 above 2^32, doubles with full precision).

const chunk: Chunk = { transferId: 'b0d4c7e2-1f0a-4c1e-9d7e-3a4b5c6d7e8f', index: 3, count: 4_000_000_001, data: bytes(300, 1), sha256: bytes(32, 2) };
const hello: Hello = { organisation: 'bank-a', softwareVersion: '0.1.0', protocolVersion: 1, featureColumns: ['limit_bal', 'age', 'pay_0'], hasLabels: true, newestReceipt: bytes(120, 23) };
const jobAccepted: JobAccepted = {
  trainRows: 2 ** 40 + 7,
  validationRows: 4_294_967_297,
  schemaHash: bytes(32, 3),
  boxPublicKey: bytes(32, 4),
  loadReport: '30000 rows kept, 12 dropped (missing age), 4 imputed',
  idSetSha256: bytes(32, 5),
  boxKeyBinding: { certificate: bytes(700, 38), signature: bytes(72, 39), specSha256: bytes(32, 139) },
};
const jobRefused: JobRefused = { code: 'FC_JOB_REFUSED', reason: 'column `pay_0` is not declared' };
const sealedKey: SealedKey = { recipient: 'bank-b', sealed: bytes(200, 6) };
const keysPublished: KeysPublished = {
  ckksPublicKey: bytes(1000, 7),
  sealedSecretKeys: [sealedKey, { recipient: 'bank-c', sealed: bytes(201, 8) }],
  paramsFingerprint: bytes(32, 9),
  publicKeyBinding: { certificate: bytes(700, 40), signature: bytes(71, 41), specSha256: bytes(32, 141) },
};
const encryptedVector: EncryptedVector = {
  scheme: 'ckks',
  length: 10_000,
  blocks: [bytes(500, 10), bytes(501, 11), bytes(502, 12)],
  paramsFingerprint: bytes(32, 13),
  blockSha256: [bytes(32, 14), bytes(32, 15), bytes(32, 16)],
};
const contribution: Contribution = { purpose: 'update', vector: encryptedVector };
const validationMetrics: ValidationMetrics = { rows: 6001, auc: 0.771234567890123, loss: 0.4412 };
const aggregateOpened: AggregateOpened = { purpose: 'moments', valuesSha256: bytes(32, 17), values: bytes(80, 18), validation: validationMetrics };
const errorReport: ErrorReport = { code: 'FC_DATA_SCHEMA', message: 'column `age` is missing', hint: 'add the column or fix the config' };
const receipt: Receipt = { seq: 2 ** 33 + 1, treeHead: bytes(120, 19) };
const welcome: Welcome = { coordinatorVersion: '0.1.0', protocolVersion: 1, treeHead: bytes(120, 29), consistencyProof: [bytes(32, 31), bytes(32, 37)] };
const jobOffer: JobOffer = { specJson: '{"name":"pd-model","rounds":5}', submitter: 'bank-a', lead: 'bank-b' };
const recipient: Recipient = { organisation: 'bank-b', boxPublicKey: bytes(32, 20), binding: { certificate: bytes(690, 42), signature: bytes(70, 43), specSha256: bytes(32, 143) } };
const keygenRequest: KeygenRequest = { recipients: [recipient, { organisation: 'bank-c', boxPublicKey: bytes(32, 21), binding: null }] };
const keyDelivery: KeyDelivery = {
  ckksPublicKey: bytes(900, 22),
  sealedSecretKey: bytes(250, 23),
  paramsFingerprint: bytes(32, 24),
  lead: recipient,
  publicKeyBinding: { certificate: bytes(690, 44), signature: bytes(72, 45), specSha256: bytes(32, 145) },
};
const featureBins: FeatureBins = {
  feature: 'age',
  edges: [29.5, 41.25],
  woe: [-0.21, 0.08, 0.3, 1.5e-12],
  events: [410, 388, 201, 3],
  totals: [1900, 2410, 1650, 17],
  iv: 0.0371,
  specials: [-1, 98],
  categories: [{ levels: ['A40', 'A46'] }, { levels: ['A43'] }],
  unseen: 'reject',
};
const preprocessing: Preprocessing = {
  features: ['limit_bal', 'age'],
  mean: [167484.32266666667, 35.4855],
  scale: [129747.66156720246, -9.217904068090155e-300],
  bins: [
    { ...featureBins, feature: 'limit_bal', edges: [50_000.5, 140_000, 240_000], woe: [-0.5, -0.1, 0.2, 0.6, 0], events: [900, 700, 500, 300, 0], totals: [3000, 3100, 3050, 2900, 0] },
    featureBins,
  ],
  clipLow: [10_000, 21],
  clipHigh: [780_000.5, 3.4028234663852886e38],
};
const contributionRequest: ContributionRequest = {
  purpose: 'update',
  globalWeights: bytes(4 * 33, 25),
  globalWeightsSha256: bytes(32, 26),
  preprocessing,
  deadlineUnixMs: 1_760_000_000_123,
  contributors: [
    { organisation: 'bank-a', boxPublicKey: bytes(32, 27), binding: { certificate: bytes(40, 28), signature: bytes(64, 29), specSha256: bytes(32, 129) } },
    { organisation: 'bank-b', boxPublicKey: bytes(32, 30), binding: { certificate: bytes(40, 31), signature: bytes(64, 32), specSha256: bytes(32, 132) } },
  ],
  attempt: 2,
};
const aggregateReady: AggregateReady = { purpose: 'update', sum: { ...encryptedVector, scheme: 'plaintext' }, contributors: ['bank-a', 'bank-b', 'bank-c'], quorum: ['bank-a', 'bank-c'] };
const jobEnded: JobEnded = { state: 'failed', message: 'too few participants', modelSha256: bytes(32, 27) };
const submitJobRequest: SubmitJobRequest = { specYaml: 'name: pd-model\nrounds: 5\n', submitter: 'bank-a' };
const submitJobResponse: SubmitJobResponse = { jobId: 'job-7f3a' };
const jobIdRequest: JobIdRequest = { jobId: 'job-7f3a' };
const roundProgress: RoundProgress = { round: 3, rounds: 10, participants: ['bank-a', 'bank-b'], trainLoss: 0.45, validationAuc: 0.77, seconds: 12.5, dropped: ['bank-c', 'bank-d'], unit: 'round' };
const jobEvent: JobEvent = { jobId: 'job-7f3a', unixMs: 1_760_000_000_456, state: 'running', stage: 'training', message: 'round 3 of 10', progress: roundProgress };
const jobStatus: JobStatus = {
  jobId: 'job-7f3a',
  state: 'succeeded',
  stage: 'done',
  message: 'published',
  roundsDone: 10,
  rounds: 10,
  modelSha256: bytes(32, 28),
  participants: ['bank-a', 'bank-b', 'bank-c'],
};

const peerEnvelope: PeerEnvelope = { peer: 'tax-bureau', kind: 'train.partial', attempt: 2, sealed: bytes(3000, 29) };
const decryptRequest: DecryptRequest = { attempt: 1, ciphertext: bytes(5000, 30), count: 16 };
const stepDone: StepDone = { step: 'batch', attempt: 6, stateSha256: bytes(32, 31), reportJson: '{"intersection":5000}' };
const decryptReply: DecryptReply = { attempt: 1, values: bytes(128, 32) };
const verticalSetup: VerticalSetup = {
  ckksPublicKey: bytes(900, 33),
  galoisKeys: bytes(4000, 34),
  paramsFingerprint: bytes(32, 35),
  parties: [recipient, { organisation: 'tax-bureau', boxPublicKey: bytes(32, 36), binding: null }],
  guest: 'bank-b',
  hosts: ['tax-bureau', 'power-company'],
  psiSalt: bytes(32, 37),
};
const stepRequest: StepRequest = { step: 'batch', attempt: 3, epoch: 4, batch: 5, argsJson: '{}' };
const keyShareEntry: KeyShareEntry = {
  organisation: 'bank-a',
  commitment: bytes(32, 60),
  commitmentBinding: { certificate: bytes(650, 61), signature: bytes(70, 62), specSha256: bytes(32, 162) },
  share: bytes(4000, 63),
};
const thresholdCeremony: ThresholdCeremony = {
  step: 'key',
  parties: [keyShareEntry, { ...keyShareEntry, organisation: 'bank-b', commitmentBinding: null }],
  paramsFingerprint: bytes(32, 64),
  publicKeySha256: bytes(32, 65),
  recipients: [recipient, { organisation: 'tax-bureau', boxPublicKey: bytes(32, 74), binding: null }],
  attempt: 2,
};
const decryptionShares: DecryptionShares = {
  purpose: 'update',
  parties: [
    { organisation: 'bank-a', shares: [bytes(3000, 66), bytes(3000, 67)], sharesSha256: bytes(32, 73) },
    { organisation: 'bank-b', shares: [], sharesSha256: bytes(32, 72) },
  ],
  combined: [bytes(3000, 68), bytes(3000, 69)],
};

const gradientShareRequest: GradientShareRequest = { attempt: 2, party: 'tax-bureau', ciphertext: bytes(3000, 75) };
const gradientShare: GradientShare = { attempt: 2, party: 'tax-bureau', share: bytes(3000, 76) };

const participantMessages: ParticipantMessage[] = [
  { jobId: 'job-0001', round: 0xffffffff, nonce: bytes(16, 40), body: 'hello', hello },
  { jobId: 'job-7f3a', round: 1, nonce: bytes(16, 51), body: 'jobAccepted', jobAccepted },
  { jobId: 'job-7f3a', round: 2, nonce: bytes(16, 52), body: 'jobRefused', jobRefused },
  { jobId: 'job-7f3a', round: 3, nonce: bytes(16, 53), body: 'keysPublished', keysPublished },
  { jobId: 'job-7f3a', round: 4, nonce: bytes(16, 54), body: 'contribution', contribution },
  { jobId: 'job-7f3a', round: 5, nonce: bytes(16, 55), body: 'aggregateOpened', aggregateOpened },
  { jobId: 'job-7f3a', round: 6, nonce: bytes(16, 56), body: 'error', error: errorReport },
  { jobId: 'job-7f3a', round: 7, nonce: bytes(16, 57), body: 'relay', relay: peerEnvelope },
  { jobId: 'job-7f3a', round: 8, nonce: bytes(16, 58), body: 'decryptRequest', decryptRequest },
  { jobId: 'job-7f3a', round: 9, nonce: bytes(16, 59), body: 'stepDone', stepDone },
  { jobId: 'job-7f3a', round: 11, nonce: bytes(16, 68), body: 'thresholdCeremony', thresholdCeremony },
  { jobId: 'job-7f3a', round: 10, nonce: bytes(16, 69), body: 'decryptionShares', decryptionShares },
  { jobId: 'job-7f3a', round: 12, nonce: bytes(16, 70), body: 'gradientShare', gradientShare },
];
const coordinatorMessages: CoordinatorMessage[] = [
  { jobId: 'job-7f3a', round: 1, body: 'welcome', welcome },
  { jobId: 'job-7f3a', round: 2, body: 'jobOffer', jobOffer },
  { jobId: 'job-7f3a', round: 3, body: 'keygenRequest', keygenRequest },
  { jobId: 'job-7f3a', round: 4, body: 'keyDelivery', keyDelivery },
  { jobId: 'job-7f3a', round: 5, body: 'contributionRequest', contributionRequest },
  { jobId: 'job-7f3a', round: 6, body: 'aggregateReady', aggregateReady },
  { jobId: 'job-7f3a', round: 7, body: 'jobEnded', jobEnded },
  { jobId: 'job-7f3a', round: 8, body: 'error', error: errorReport },
  { jobId: 'job-7f3a', round: 9, body: 'receipt', receipt },
  { jobId: 'job-7f3a', round: 10, body: 'relay', relay: peerEnvelope },
  { jobId: 'job-7f3a', round: 11, body: 'decryptReply', decryptReply },
  { jobId: 'job-7f3a', round: 12, body: 'verticalSetup', verticalSetup },
  { jobId: 'job-7f3a', round: 13, body: 'stepRequest', stepRequest },
  { jobId: 'job-7f3a', round: 15, body: 'thresholdCeremony', thresholdCeremony },
  { jobId: 'job-7f3a', round: 16, body: 'decryptionShares', decryptionShares },
  { jobId: 'job-7f3a', round: 17, body: 'gradientShareRequest', gradientShareRequest },
];
const participantFrames: ParticipantFrame[] = [
  { frame: 'message', message: participantMessages[4]! },
  { frame: 'chunk', chunk },
];
const coordinatorFrames: CoordinatorFrame[] = [
  { frame: 'message', message: coordinatorMessages[4]! },
  { frame: 'chunk', chunk },
];

const samples: Record<string, object[]> = {
  Chunk: [chunk],
  ParticipantFrame: participantFrames,
  CoordinatorFrame: coordinatorFrames,
  ParticipantMessage: participantMessages,
  Hello: [hello],
  JobAccepted: [jobAccepted],
  JobRefused: [jobRefused],
  SealedKey: [sealedKey],
  KeysPublished: [keysPublished],
  Contribution: [contribution],
  EncryptedVector: [encryptedVector],
  ValidationMetrics: [validationMetrics],
  AggregateOpened: [aggregateOpened],
  ErrorReport: [errorReport],
  CoordinatorMessage: coordinatorMessages,
  Receipt: [receipt],
  Welcome: [welcome],
  JobOffer: [jobOffer],
  Recipient: [recipient],
  KeygenRequest: [keygenRequest],
  KeyDelivery: [keyDelivery],
  KeyBinding: [{ certificate: bytes(650, 46), signature: bytes(70, 47), specSha256: bytes(32, 147) }],
  FeatureBins: [featureBins],
  LevelGroup: [{ levels: ['A40', 'A46'] }],
  Preprocessing: [preprocessing],
  ContributionRequest: [contributionRequest],
  AggregateReady: [aggregateReady],
  JobEnded: [jobEnded],
  SubmitJobRequest: [submitJobRequest],
  SubmitJobResponse: [submitJobResponse],
  WatchJobRequest: [jobIdRequest],
  GetJobRequest: [jobIdRequest],
  RoundProgress: [roundProgress],
  JobEvent: [jobEvent],
  JobStatus: [jobStatus],
  DownloadModelRequest: [jobIdRequest],
  ReadLedgerRequest: [{}],
  PeerEnvelope: [peerEnvelope],
  DecryptRequest: [decryptRequest],
  StepDone: [stepDone],
  DecryptReply: [decryptReply],
  VerticalSetup: [verticalSetup],
  StepRequest: [stepRequest],
  ThresholdCeremony: [thresholdCeremony],
  KeyShareEntry: [keyShareEntry],
  DecryptionShares: [decryptionShares],
  PartyDecryptionShares: [decryptionShares.parties[0]!],
  GradientShareRequest: [gradientShareRequest],
  GradientShare: [gradientShare],
  // ledger.proto
  BlobRef: [{ name: 'update', sha256: new Uint8Array(32).fill(7), size: 117_000 }],
  LedgerEntry: [
    {
      seq: 41,
      unixMs: 1_795_427_935_764,
      author: 'coordinator',
      prevHash: new Uint8Array(32).fill(9),
      jobId: 'job-20261123-ed08fb37',
      kind: 'update_received',
      bodyJson: '{"participant":"bank-a","round":3}',
      blobs: [
        { name: 'update', sha256: new Uint8Array(32).fill(1), size: 117_000 },
        { name: 'global_weights', sha256: new Uint8Array(32).fill(2), size: 96 },
      ],
    },
  ],
  SignedEntry: [{ entry: new Uint8Array([8, 41, 16, 1]), signature: new Uint8Array(64).fill(3) }],
  TreeHead: [{ size: 42, root: new Uint8Array(32).fill(4), unixMs: 1_795_427_935_800, signer: 'coordinator', signature: new Uint8Array(64).fill(5) }],
};

/** Every message type defined in proto/ (nested ones included), by unqualified name. */
function federationMessageTypes(): string[] {
  const names: string[] = [];
  const walk = (ns: protobuf.NamespaceBase) => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Type) names.push(obj.name);
      if (obj instanceof protobuf.Namespace || obj instanceof protobuf.Type) walk(obj);
    }
  };
  walk(protoRoot());
  return names.sort();
}

/** A field's value counts as populated when it is not what proto3 would leave out of the encoding. */
function populated(field: protobuf.Field, value: unknown): boolean {
  if (field.repeated) return Array.isArray(value) && value.length >= 2;
  if (field.resolvedType instanceof protobuf.Type) return value !== null && value !== undefined && typeof value === 'object';
  switch (field.type) {
    case 'string':
      return typeof value === 'string' && value.length > 0;
    case 'bytes':
      return value instanceof Uint8Array && value.length > 0;
    case 'bool':
      return value === true;
    default:
      return typeof value === 'number' && value !== 0;
  }
}

describe('every proto/ message round-trips through encodeMessage/decodeMessage', () => {
  it('the samples cover exactly the message types of proto/ (federation and ledger)', () => {
    const inProto = federationMessageTypes();
    expect(inProto.length).toBeGreaterThanOrEqual(37);
    expect(Object.keys(samples).sort()).toEqual(inProto);
  });

  it('every sample is fully populated: each field set, each oneof member exercised', () => {
    for (const [name, list] of Object.entries(samples)) {
      const type = messageType(name);
      for (const field of type.fieldsArray) {
        if (field.partOf) continue;
        for (const sample of list) {
          expect(populated(field, (sample as Record<string, unknown>)[field.name]), `${name}.${field.name} is not populated in a sample`).toBe(true);
        }
      }
      for (const oneof of type.oneofsArray) {
        const used = list.map((s) => (s as Record<string, unknown>)[oneof.name]);
        expect(new Set(used), `${name}.${oneof.name}: every member needs a sample`).toEqual(new Set(oneof.fieldsArray.map((f) => f.name)));
        for (const sample of list) {
          const member = (sample as Record<string, string>)[oneof.name]!;
          const field = type.fields[member]!;
          expect(populated(field, (sample as Record<string, unknown>)[member]), `${name}.${member} is not populated`).toBe(true);
        }
      }
    }
  });

  for (const [name, list] of Object.entries(samples)) {
    it(`${name} (${list.length} sample${list.length > 1 ? 's' : ''})`, () => {
      for (const sample of list) {
        const encoded = encodeMessage(name, sample);
        // A message with no fields (ReadLedgerRequest) encodes to nothing; every other sample sets a field.
        expect(encoded.length > 0 || Object.keys(sample).length === 0).toBe(true);
        const decoded = decodeMessage<object>(name, encoded);
        expect(normalise(decoded)).toStrictEqual(normalise(sample));
        // Re-encoding the decoded object gives the same bytes: nothing is lost or added on the way.
        expect(Buffer.from(encodeMessage(name, decoded)).equals(Buffer.from(encoded))).toBe(true);
      }
    });
  }

  it('encodeMessage refuses a mistyped field instead of sending something else', () => {
    expect(() => encodeMessage('Hello', { ...hello, protocolVersion: 'one' })).toThrow(/cannot encode Hello/);
    expect(() => encodeMessage('EncryptedVector', { ...encryptedVector, blocks: 'not bytes' })).toThrow(/cannot encode EncryptedVector/);
  });

  it('decodeMessage refuses malformed bytes', () => {
    expect(() => decodeMessage('ParticipantMessage', Buffer.alloc(16, 0xff))).toThrow();
  });
});

// ---------------------------------------------------------------------------------------------------------
// Framing

/** A contribution of `blocks` random blocks of `blockBytes` each. */
function bigContribution(blocks: number, blockBytes: number, round = 1): ParticipantMessage {
  const list = Array.from({ length: blocks }, () => randomBytes(blockBytes));
  return {
    jobId: 'job-big',
    round,
    nonce: bytes(16, round),
    body: 'contribution',
    contribution: {
      purpose: 'update',
      vector: { scheme: 'ckks', length: blocks * 4096, blocks: list, paramsFingerprint: bytes(32, 40), blockSha256: list.map(digestOf) },
    },
  };
}

function chunksOf(frames: Frame<ParticipantMessage>[]): Chunk[] {
  return frames.map((f) => {
    if (f.frame !== 'chunk') throw new Error('expected only chunk frames');
    return f.chunk;
  });
}

function expectProtocolError(fn: () => unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'a FedcreditError should be thrown').toBeInstanceOf(FedcreditError);
  expect((caught as FedcreditError).code).toBe('FC_PROTOCOL');
  expect((caught as FedcreditError).message).toMatch(pattern);
}

/** Feed frames; every one but the last must yield nothing, the last the message. */
function feedAll(r: Reassembler<ParticipantMessage>, frames: Frame<ParticipantMessage>[]): ParticipantMessage {
  let out: ParticipantMessage | undefined;
  frames.forEach((f, i) => {
    out = r.accept(f);
    if (i < frames.length - 1) expect(out).toBeUndefined();
  });
  expect(out).toBeDefined();
  return out!;
}

/** The frames encodeFrames hands to gRPC, decoded as the receiving end's deserialiser decodes them. */
function framesOf(message: ParticipantMessage): { frames: Frame<ParticipantMessage>[]; bytes: number } {
  const { frames, bytes } = encodeFrames('ParticipantMessage', message);
  return { frames: frames.map((f) => decodeMessage<Frame<ParticipantMessage>>('ParticipantFrame', f)), bytes };
}

describe('encodeFrames and Reassembler', () => {
  const big = bigContribution(10, 600_000);
  const { frames, bytes: encodedBytes } = framesOf(big);

  it('sends a small message as one frame, encoded once as a ParticipantFrame, which the reassembler passes straight through', () => {
    const small = participantMessages[0]!;
    const encoded = encodeFrames('ParticipantMessage', small);
    expect(encoded.frames).toHaveLength(1);
    expect(Buffer.from(encoded.frames[0]!).equals(Buffer.from(encodeMessage('ParticipantFrame', { message: small })))).toBe(true);
    expect(encoded.bytes).toBe(encodeMessage('ParticipantMessage', small).length);
    const [one] = framesOf(small).frames;
    expect(one!.frame).toBe('message');
    expect(normalise(new Reassembler<ParticipantMessage>('ParticipantMessage').accept(one!)!)).toStrictEqual(normalise(small));
  });

  it('splits a 6 MB contribution into chunks of at most CHUNK_BYTES whose data concatenates to the encoding', () => {
    const encoded = Buffer.from(encodeMessage('ParticipantMessage', big));
    expect(encodedBytes).toBe(encoded.length);
    expect(encodedBytes).toBeGreaterThan(4 * 1024 * 1024);
    const chunks = chunksOf(frames);
    expect(chunks.length).toBe(Math.ceil(encoded.length / CHUNK_BYTES));
    expect(new Set(chunks.map((c) => c.transferId)).size).toBe(1);
    chunks.forEach((c, i) => {
      expect(c.index).toBe(i);
      expect(c.count).toBe(chunks.length);
      expect(c.data.length).toBeLessThanOrEqual(CHUNK_BYTES);
      expect(c.data.length).toBeGreaterThan(0);
      // Only the last chunk carries the digest of the whole.
      expect(c.sha256.length).toBe(i === chunks.length - 1 ? 32 : 0);
    });
    expect(Buffer.concat(chunks.map((c) => c.data)).equals(encoded)).toBe(true);
    expect(Buffer.from(chunks.at(-1)!.sha256).equals(Buffer.from(sha256(encoded)))).toBe(true);
    // Each chunk frame, as gRPC carries it, is itself well under gRPC's 4 MB default.
    for (const f of encodeFrames('ParticipantMessage', big).frames) expect(f.length).toBeLessThan(CHUNK_BYTES + 1024);
  });

  it('reassembles the chunks into an equal message', () => {
    const r = new Reassembler<ParticipantMessage>('ParticipantMessage');
    const out = feedAll(r, frames);
    expect(normalise(out)).toStrictEqual(normalise(big));
  });

  describe('refuses a broken transfer with FC_PROTOCOL, then accepts a fresh valid one', () => {
    const r = new Reassembler<ParticipantMessage>('ParticipantMessage');
    const chunks = chunksOf(frames);
    const frame = (c: Chunk): Frame<ParticipantMessage> => ({ frame: 'chunk', chunk: c });

    const recovers = () => {
      const fresh = bigContribution(3, 600_000, 9);
      const out = feedAll(r, framesOf(fresh).frames);
      expect(normalise(out)).toStrictEqual(normalise(fresh));
    };

    it('chunks out of order', () => {
      expect(r.accept(frame(chunks[0]!))).toBeUndefined();
      expect(r.accept(frame(chunks[1]!))).toBeUndefined();
      expectProtocolError(() => r.accept(frame(chunks[3]!)), new RegExp(`chunk 3 of transfer ${chunks[0]!.transferId} arrived out of order \\(expected 2\\)`));
      recovers();
    });

    it('a transfer that starts past chunk 0', () => {
      expectProtocolError(() => r.accept(frame(chunks[1]!)), /started at chunk 1, not 0/);
      recovers();
    });

    it('a missing chunk in the middle', () => {
      const withoutThird = chunks.filter((c) => c.index !== 2);
      expectProtocolError(() => withoutThird.forEach((c) => r.accept(frame(c))), /chunk 3 .* arrived out of order \(expected 2\)/);
      recovers();
    });

    it('a missing last chunk, noticed when the next message arrives', () => {
      for (const c of chunks.slice(0, -1)) expect(r.accept(frame(c))).toBeUndefined();
      expectProtocolError(
        () => r.accept({ frame: 'message', message: participantMessages[0]! }),
        new RegExp(`a message arrived while transfer ${chunks[0]!.transferId} was incomplete \\(${chunks.length - 1}/${chunks.length} chunks\\)`),
      );
      recovers();
    });

    it('a chunk from another transfer interleaved', () => {
      const other = chunksOf(framesOf(bigContribution(3, 600_000)).frames);
      expect(other[0]!.transferId).not.toBe(chunks[0]!.transferId);
      r.accept(frame(chunks[0]!));
      r.accept(frame(chunks[1]!));
      expectProtocolError(() => r.accept(frame(other[0]!)), new RegExp(`chunk of transfer ${other[0]!.transferId} arrived while transfer ${chunks[0]!.transferId} was incomplete`));
      recovers();
    });

    it('a chunk that changes the announced count', () => {
      r.accept(frame(chunks[0]!));
      expectProtocolError(() => r.accept(frame({ ...chunks[1]!, count: chunks.length + 1 })), /changed the chunk count/);
      recovers();
    });

    it('a corrupted byte (SHA-256 mismatch)', () => {
      const data = Buffer.from(chunks[2]!.data);
      data[12345]! ^= 0x01;
      const corrupted = chunks.map((c, i) => (i === 2 ? { ...c, data } : c));
      expectProtocolError(() => corrupted.forEach((c) => r.accept(frame(c))), new RegExp(`transfer ${chunks[0]!.transferId} does not match its SHA-256`));
      recovers();
    });

    it('a transfer whose digest matches but whose bytes are not a message', () => {
      const junk = Buffer.alloc(3 * 1000, 0xff);
      const transferId = 'junk-transfer';
      const parts = [0, 1, 2].map((index) => ({
        transferId,
        index,
        count: 3,
        data: junk.subarray(index * 1000, (index + 1) * 1000),
        sha256: index === 2 ? sha256(junk) : new Uint8Array(),
      }));
      expectProtocolError(() => parts.forEach((c) => r.accept(frame(c))), /transfer junk-transfer does not decode as ParticipantMessage/);
      recovers();
    });

    it('a transfer above the message size limit', () => {
      const limited = new Reassembler<ParticipantMessage>('ParticipantMessage', 3 * CHUNK_BYTES);
      expectProtocolError(() => chunks.forEach((c) => limited.accept(frame(c))), new RegExp(`exceeds the ${3 * CHUNK_BYTES}-byte message limit`));
      const fresh = bigContribution(2, 600_000);
      expect(normalise(feedAll(limited, framesOf(fresh).frames))).toStrictEqual(normalise(fresh));
    });

    it('an empty frame', () => {
      expectProtocolError(() => r.accept({ frame: 'chunk' } as unknown as Frame<ParticipantMessage>), /empty frame/);
      recovers();
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// Over real gRPC

describe('over gRPC on 127.0.0.1, a ~20 MB contribution travels in chunks and comes back byte-identical', () => {
  const Client = grpc.makeGenericClientConstructor(coordinatorServiceDefinition(), 'Coordinator');
  let server: grpc.Server;
  let client: grpc.Client;
  const serverErrors: Error[] = [];
  let framesReceived = 0;
  let chunkFramesReceived = 0;
  let largestChunk = 0;

  beforeAll(async () => {
    server = new grpc.Server();
    server.addService(coordinatorServiceDefinition(), {
      connect: (call: grpc.ServerDuplexStream<Frame<ParticipantMessage>, Uint8Array>) => {
        call.on('data', (f: Frame<ParticipantMessage>) => {
          framesReceived++;
          if (f.frame === 'chunk') {
            chunkFramesReceived++;
            largestChunk = Math.max(largestChunk, f.chunk.data.length);
          }
        });
        const stream = new FramedStream<ParticipantMessage, CoordinatorMessage>(call as unknown as DuplexCall<Frame<ParticipantMessage>, Uint8Array>, 'ParticipantMessage', 'CoordinatorMessage', {
          onMessage: (m) => {
            if (m.body !== 'contribution') return;
            stream
              .send({ jobId: m.jobId, round: m.round, body: 'aggregateReady', aggregateReady: { purpose: m.contribution.purpose, sum: m.contribution.vector, contributors: ['echo'] } })
              .catch((err: Error) => serverErrors.push(err));
          },
          onProtocolError: (err) => serverErrors.push(err),
          onClose: () => call.end(),
        });
      },
    } as grpc.UntypedServiceImplementation);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    client?.close();
    await new Promise<void>((resolve) => {
      if (!server) return resolve();
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  });

  it('echoes a 20 MB contribution through FramedStream unchanged', async () => {
    const sent = bigContribution(20, 1_000_000, 7);
    const call = (client as unknown as { connect(): DuplexCall<Frame<CoordinatorMessage>, Uint8Array> }).connect();
    const clientErrors: Error[] = [];
    let resolveReply!: (m: CoordinatorMessage) => void;
    const reply = new Promise<CoordinatorMessage>((resolve) => (resolveReply = resolve));
    const stream = new FramedStream<CoordinatorMessage, ParticipantMessage>(call, 'CoordinatorMessage', 'ParticipantMessage', {
      onMessage: resolveReply,
      onProtocolError: (err) => clientErrors.push(err),
      onClose: (err) => err && clientErrors.push(err),
    });

    const sentBytes = await stream.send(sent);
    expect(sentBytes).toBeGreaterThan(20_000_000);
    const got = await reply;
    stream.end();

    expect(clientErrors).toEqual([]);
    expect(serverErrors).toEqual([]);
    expect(got.jobId).toBe(sent.jobId);
    expect(got.round).toBe(sent.round);
    if (got.body !== 'aggregateReady' || sent.body !== 'contribution') throw new Error(`unexpected reply ${got.body}`);
    const back = got.aggregateReady.sum;
    const out = sent.contribution.vector;
    expect(back.blocks.length).toBe(out.blocks.length);
    back.blocks.forEach((b, i) => {
      expect(b.length).toBe(out.blocks[i]!.length);
      expect(Buffer.from(b).equals(Buffer.from(out.blocks[i]!))).toBe(true);
    });
    expect(normalise(back)).toStrictEqual(normalise(out));
    // It travelled as ~1 MiB chunks, none anywhere near gRPC's 4 MB default limit.
    expect(chunkFramesReceived).toBe(Math.ceil(sentBytes / CHUNK_BYTES));
    expect(framesReceived).toBe(chunkFramesReceived);
    expect(largestChunk).toBeLessThanOrEqual(CHUNK_BYTES);
  });

  it('the same message sent unchunked is refused by gRPC, so the chunking is what makes it travel', async () => {
    const sent = bigContribution(5, 1_000_000, 8);
    const call = (client as unknown as { connect(): DuplexCall<Frame<CoordinatorMessage>, Uint8Array> }).connect();
    const status = await new Promise<grpc.StatusObject | Error>((resolve) => {
      call.on('error', (err) => resolve(err));
      call.on('data', () => undefined);
      call.write(encodeMessage('ParticipantFrame', { message: sent }));
    });
    expect((status as grpc.ServiceError).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });
});

describe('HTTP/2 windows', () => {
  it('a server after widenServerWindows grants every connection and stream 8 MiB; clients ask for the same', async () => {
    expect(CHANNEL_OPTIONS['grpc-node.flow_control_window']).toBe(FLOW_CONTROL_WINDOW_BYTES);
    expect(FLOW_CONTROL_WINDOW_BYTES).toBe(8 * 2 ** 20);
    const server = new grpc.Server({ ...CHANNEL_OPTIONS });
    server.addService(coordinatorServiceDefinition(), {});
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    widenServerWindows(server);
    const session = connect(`http://127.0.0.1:${port}`);
    try {
      // The server's first SETTINGS carry Node's defaults; its sessions then announce the wider window.
      const deadline = Date.now() + 10_000;
      while (!(session.remoteSettings.initialWindowSize === FLOW_CONTROL_WINDOW_BYTES && session.state.remoteWindowSize! >= FLOW_CONTROL_WINDOW_BYTES) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(session.remoteSettings.initialWindowSize).toBe(FLOW_CONTROL_WINDOW_BYTES);
      expect(session.state.remoteWindowSize).toBeGreaterThanOrEqual(FLOW_CONTROL_WINDOW_BYTES);
    } finally {
      session.destroy();
      server.forceShutdown();
    }
  });
});
