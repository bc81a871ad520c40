/**
 * Hostile-input tooling for the coordinator fuzz test: a raw gRPC client that sends arbitrary bytes on every
 * Coordinator method (identity (de)serialisers, same paths as coordinatorServiceDefinition()), a tiny protobuf
 * writer for hand-made wrong-typed encodings, seeded generators and mutators of real messages, and a tally of
 * call outcomes by gRPC status code.
 */
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Rng } from '../../src/random.js';
import { coordinatorServiceDefinition, decodeMessage, encodeMessage, PROTOCOL_VERSION } from '../../src/wire/proto.js';
import type { CoordinatorMessage, ParticipantMessage } from '../../src/wire/messages.js';

// ---------------------------------------------------------------------------------------------------------
// Raw client

type Cb = (err: grpc.ServiceError | null, value?: Buffer) => void;
export interface RawCoordinatorClient extends grpc.Client {
  connect(metadata: grpc.Metadata, options: grpc.CallOptions): grpc.ClientDuplexStream<Buffer, Buffer>;
  submitJob(req: Buffer, metadata: grpc.Metadata, options: grpc.CallOptions, cb: Cb): grpc.ClientUnaryCall;
  getJob(req: Buffer, metadata: grpc.Metadata, options: grpc.CallOptions, cb: Cb): grpc.ClientUnaryCall;
  watchJob(req: Buffer, metadata: grpc.Metadata, options: grpc.CallOptions): grpc.ClientReadableStream<Buffer>;
  downloadModel(req: Buffer, metadata: grpc.Metadata, options: grpc.CallOptions): grpc.ClientReadableStream<Buffer>;
}

const identity = (b: Buffer) => b;
const RawClient = grpc.makeGenericClientConstructor(
  Object.fromEntries(
    Object.entries(coordinatorServiceDefinition()).map(([name, m]) => [
      name,
      { ...m, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
    ]),
  ),
  'CoordinatorRaw',
);

/** A client on its own HTTP/2 connection (the distinct channel option keeps grpc-js from sharing subchannels). */
export function rawClient(address: string, name: string): RawCoordinatorClient {
  return new RawClient(address, grpc.credentials.createInsecure(), { 'grpc.fuzz_client': name, 'grpc.max_receive_message_length': 64 << 20 }) as unknown as RawCoordinatorClient;
}

// ---------------------------------------------------------------------------------------------------------
// Protobuf writer (enough to hand-build wrong encodings)

export function varint(n: number | bigint): Buffer {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Buffer.from(out);
}
export const tag = (field: number, wireType: number) => varint((field << 3) | wireType);
export const fVarint = (field: number, n: number | bigint) => Buffer.concat([tag(field, 0), varint(n)]);
export const fBytes = (field: number, bytes: Uint8Array) => Buffer.concat([tag(field, 2), varint(bytes.length), bytes]);

export const sha = (b: Uint8Array) => createHash('sha256').update(b).digest();

// ---------------------------------------------------------------------------------------------------------
// Generators

export const BODY_KINDS = ['hello', 'jobAccepted', 'jobRefused', 'keysPublished', 'contribution', 'aggregateOpened', 'error', 'relay', 'decryptRequest', 'stepDone'] as const;
export type BodyKind = (typeof BODY_KINDS)[number];

export function bytesOf(rng: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

/** Random bytes of a random length in 0..64 KiB, skewed towards short (most parsers fail early on those). */
export function randomPayload(rng: Rng): Buffer {
  const r = rng.next();
  const len = r < 0.3 ? rng.int(64) : r < 0.6 ? rng.int(1024) : rng.int(64 * 1024 + 1);
  return bytesOf(rng, len);
}

export function hello(org: string, protocolVersion = PROTOCOL_VERSION): object {
  return { organisation: org, softwareVersion: 'fuzz', protocolVersion, featureColumns: ['x0', 'x1'], hasLabels: true };
}

/** A well-formed ParticipantMessage (plain object) of the given body kind. */
export function participantMessage(rng: Rng, kind: BodyKind, jobId: string, round: number, org = 'mallory'): object {
  const vector = () => {
    const blocks = Array.from({ length: 1 + rng.int(3) }, () => bytesOf(rng, rng.int(4096)));
    return { scheme: rng.pick(['ckks', 'plaintext', 'rot13']), length: rng.int(100), blocks, paramsFingerprint: bytesOf(rng, 32), blockSha256: blocks.map(sha) };
  };
  const body: Record<BodyKind, () => object> = {
    hello: () => hello(org),
    jobAccepted: () => ({ trainRows: rng.int(1e6), validationRows: rng.int(1e5), schemaHash: bytesOf(rng, 32), boxPublicKey: bytesOf(rng, 32), loadReport: 'fuzz', idSetSha256: bytesOf(rng, 32) }),
    jobRefused: () => ({ code: 'consent', reason: 'fuzz' }),
    keysPublished: () => ({ ckksPublicKey: bytesOf(rng, rng.int(8192)), sealedSecretKeys: [{ recipient: 'bank-b', sealed: bytesOf(rng, 64) }], paramsFingerprint: bytesOf(rng, 32) }),
    contribution: () => ({ purpose: rng.pick(['moments', 'update']), vector: vector() }),
    aggregateOpened: () => ({ purpose: 'update', valuesSha256: bytesOf(rng, 32), values: bytesOf(rng, 8 * rng.int(64)), validation: { rows: rng.int(1000), auc: rng.next(), loss: rng.next() } }),
    error: () => ({ code: 'FC_FUZZ', message: 'fuzz', hint: '' }),
    relay: () => ({
      peer: rng.pick(['bank-a', 'bank-b', 'mallory', '']),
      kind: rng.pick(['psi.host_blinded', 'train.partial', 'score.share']),
      attempt: rng.int(3),
      sealed: bytesOf(rng, rng.int(8192)),
    }),
    decryptRequest: () => ({ attempt: rng.int(3), ciphertext: bytesOf(rng, rng.int(16384)), count: rng.int(5000) }),
    stepDone: () => ({ step: rng.pick(['psi', 'batch', 'validate']), attempt: rng.int(3), stateSha256: bytesOf(rng, 32), reportJson: rng.pick(['{}', '{"intersection":5}', 'not json']) }),
  };
  return { jobId, round, [kind]: body[kind]() };
}

export function messageFrame(message: object): Buffer {
  return Buffer.from(encodeMessage('ParticipantFrame', { message }));
}

export function chunkFrame(chunk: { transferId: string; index: number; count: number; data: Uint8Array; sha256?: Uint8Array }): Buffer {
  return Buffer.from(encodeMessage('ParticipantFrame', { chunk: { sha256: new Uint8Array(), ...chunk } }));
}

/** A message as a well-formed run of `count` chunk frames (digest on the last). */
export function chunkedFrames(message: object, count: number, transferId: string): Buffer[] {
  const encoded = Buffer.from(encodeMessage('ParticipantMessage', message));
  const size = Math.ceil(encoded.length / count);
  return Array.from({ length: count }, (_, index) =>
    chunkFrame({ transferId, index, count, data: encoded.subarray(index * size, (index + 1) * size), sha256: index === count - 1 ? sha(encoded) : undefined }),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Mutators

/** Hand-built encodings with a wrong wire type or an impossible length, at the frame or the message level. */
export function wrongTypeFrame(rng: Rng, valid: Buffer): Buffer {
  switch (rng.int(7)) {
    case 0: // ParticipantFrame.message as a varint
      return fVarint(1, rng.nextUint32());
    case 1: // ParticipantFrame.chunk as a fixed64
      return Buffer.concat([tag(2, 1), bytesOf(rng, 8)]);
    case 2: // Hello.organisation as a varint, inside an otherwise valid frame
      return fBytes(1, fBytes(10, Buffer.concat([fVarint(1, rng.nextUint32()), fVarint(3, 1)])));
    case 3: // Chunk.data declaring ~4 GiB, followed by a few bytes
      return Buffer.concat([tag(2, 2), varint(64), fBytes(1, Buffer.from('t')), fVarint(2, 0), fVarint(3, 2), tag(4, 2), varint(0xfffffff0), bytesOf(rng, 40)]);
    case 4: // the frame itself declaring a huge length
      return Buffer.concat([tag(1, 2), varint(2n ** BigInt(20 + rng.int(44))), valid.subarray(0, 32)]);
    case 5: // round (a varint) as bytes
      return fBytes(1, Buffer.concat([fBytes(1, Buffer.from('job-x')), fBytes(2, bytesOf(rng, 1 + rng.int(16))), fBytes(16, Buffer.alloc(0))]));
    default: // invalid wire types 6/7, or a group start never closed
      return Buffer.concat([valid.subarray(0, rng.int(valid.length + 1)), tag(1 + rng.int(20), rng.pick([6, 7, 3])), bytesOf(rng, rng.int(16))]);
  }
}

export function mutate(rng: Rng, valid: Buffer): Buffer {
  let b: Buffer = Buffer.from(valid);
  const ops = 1 + rng.int(3);
  for (let k = 0; k < ops; k++) {
    switch (rng.int(5)) {
      case 0: // bit flips
        for (let i = 0, n = 1 + rng.int(8); i < n && b.length > 0; i++) b[rng.int(b.length)]! ^= 1 << rng.int(8);
        break;
      case 1: // truncation
        b = b.subarray(0, rng.int(b.length + 1));
        break;
      case 2: // appended garbage
        b = Buffer.concat([b, bytesOf(rng, 1 + rng.int(256))]);
        break;
      case 3: // a huge varint overwriting some position (often a length prefix)
        if (b.length > 2) {
          const at = 1 + rng.int(b.length - 1);
          b = Buffer.concat([b.subarray(0, at), varint(0xffffffffn), b.subarray(Math.min(b.length, at + 1))]);
        }
        break;
      default:
        b = wrongTypeFrame(rng, b);
    }
  }
  return b;
}

// ---------------------------------------------------------------------------------------------------------
// Oracle: what the coordinator should do with one frame sent first on a fresh control stream, then a half-close

export type Expectation = 'accept' | 'refuse';

/** Only a decodable, well-formed Hello for an organisation not yet connected may be accepted; all else is refused. */
export function firstFrameExpectation(bytes: Buffer, connected: (org: string) => boolean): { expect: Expectation; why: string } {
  let frame: { frame?: string; message?: ParticipantMessage };
  try {
    frame = decodeMessage('ParticipantFrame', bytes);
  } catch {
    return { expect: 'refuse', why: 'undecodable' };
  }
  if (frame.frame !== 'message') return { expect: 'refuse', why: frame.frame === 'chunk' ? 'lone chunk' : 'empty frame' };
  const m = frame.message!;
  if (m.body !== 'hello') return { expect: 'refuse', why: 'not hello' };
  if (!m.hello.organisation || m.hello.protocolVersion !== PROTOCOL_VERSION || connected(m.hello.organisation)) return { expect: 'refuse', why: 'bad hello' };
  return { expect: 'accept', why: 'valid hello' };
}

// ---------------------------------------------------------------------------------------------------------
// Tally

export class Tally {
  readonly byCategory = new Map<string, Map<string, number>>();
  readonly violations: string[] = [];
  messages = 0;
  calls = 0;
  inBandErrors = 0;

  record(category: string, code: grpc.status | 'HUNG'): void {
    this.calls++;
    const name = typeof code === 'number' ? grpc.status[code] : code;
    const m = this.byCategory.get(category) ?? new Map<string, number>();
    m.set(name, (m.get(name) ?? 0) + 1);
    this.byCategory.set(category, m);
  }

  violation(text: string): void {
    if (this.violations.length < 200) this.violations.push(text);
  }

  byStatus(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const m of this.byCategory.values()) for (const [k, v] of m) out[k] = (out[k] ?? 0) + v;
    return out;
  }

  table(): string {
    const rows = [...this.byCategory.entries()].sort(([a], [b]) => a.localeCompare(b));
    return rows
      .map(
        ([cat, m]) =>
          `  ${cat.padEnd(34)} ${[...m.entries()]
            .sort()
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}`,
      )
      .join('\n');
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------
// Calls with a deadline and a watchdog (a call that reports no status 3 s past its deadline counts as HUNG)

export interface CallEnd {
  code: grpc.status | 'HUNG';
  details: string;
}

interface ReplyFrame {
  frame?: 'message' | 'chunk';
  message?: CoordinatorMessage;
}

/** A Connect stream carrying raw bytes; replies are decoded as CoordinatorFrame for the checks. */
export class RawStream {
  readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly replies: CoordinatorMessage[] = [];
  readonly ended: Promise<CallEnd>;
  done = false;
  private readonly listeners = new Set<() => void>();

  constructor(
    client: RawCoordinatorClient,
    deadlineMs: number,
    private readonly tally: Tally,
  ) {
    this.call = client.connect(new grpc.Metadata(), { deadline: Date.now() + deadlineMs });
    this.call.on('data', (b: Buffer) => {
      try {
        const f = decodeMessage<ReplyFrame>('CoordinatorFrame', b);
        if (f.frame === 'message') this.replies.push(f.message!);
      } catch (err) {
        tally.violation(`the coordinator sent an undecodable frame: ${(err as Error).message}`);
      }
      for (const l of this.listeners) l();
    });
    this.call.on('error', () => undefined);
    this.ended = new Promise((resolve) => {
      const watchdog = setTimeout(() => {
        this.call.cancel();
        resolve({ code: 'HUNG', details: 'no status 3 s past the deadline' });
      }, deadlineMs + 3000);
      this.call.on('status', (s: grpc.StatusObject) => {
        clearTimeout(watchdog);
        this.done = true;
        for (const l of this.listeners) l();
        resolve({ code: s.code, details: s.details });
      });
    });
  }

  write(frame: Buffer): void {
    if (this.done) return;
    this.tally.messages++;
    this.call.write(frame);
  }

  errors(): CoordinatorMessage[] {
    return this.replies.filter((m) => m.body === 'error');
  }

  /** Resolves true once `pred` holds, false at the timeout or when the call ends first. */
  until(pred: () => boolean, ms: number): Promise<boolean> {
    if (pred()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (pred() || this.done) finish(pred());
      };
      const timer = setTimeout(() => finish(false), ms);
      const finish = (v: boolean) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve(v);
      };
      this.listeners.add(check);
    });
  }
}

export function unaryCall(client: RawCoordinatorClient, method: 'submitJob' | 'getJob', payload: Buffer, deadlineMs: number): Promise<CallEnd> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (e: CallEnd) => {
      if (settled) return;
      settled = true;
      clearTimeout(watchdog);
      resolve(e);
    };
    const call = client[method](payload, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err) =>
      settle(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '' }),
    );
    const watchdog = setTimeout(() => {
      call.cancel();
      settle({ code: 'HUNG', details: 'no status 3 s past the deadline' });
    }, deadlineMs + 3000);
  });
}

export function serverStreamCall(client: RawCoordinatorClient, method: 'watchJob' | 'downloadModel', payload: Buffer, deadlineMs: number): Promise<CallEnd & { messages: number }> {
  return new Promise((resolve) => {
    let messages = 0;
    const call = client[method](payload, new grpc.Metadata(), { deadline: Date.now() + deadlineMs });
    const watchdog = setTimeout(() => {
      call.cancel();
      resolve({ code: 'HUNG', details: 'no status 3 s past the deadline', messages });
    }, deadlineMs + 3000);
    call.on('data', () => messages++);
    call.on('error', () => undefined);
    call.on('status', (s: grpc.StatusObject) => {
      clearTimeout(watchdog);
      resolve({ code: s.code, details: s.details, messages });
    });
  });
}

/** Resident set size of a process, in MiB, from /proc/<pid>/status. */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}
