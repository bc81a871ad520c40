import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '../bytes.js';
import { ErrorCode, FedcreditError } from '../errors.js';
import { decodeMessage, encodeMessage } from './proto.js';
import type { Chunk } from './messages.js';

/** Messages larger than this travel as Chunk frames; well under gRPC's 4 MB default receive limit. */
export const CHUNK_BYTES = 1 << 20;
/** Largest message a reassembler accepts (a 1M-parameter model update under CKKS is about 60 MiB). */
export const MAX_MESSAGE_BYTES = 512 * (1 << 20);

export type MessageTypeName = 'ParticipantMessage' | 'CoordinatorMessage';
export type Frame<M> = { frame: 'message'; message: M } | { frame: 'chunk'; chunk: Chunk };

/** Split a payload into chunks whose data concatenates to it; the last carries the SHA-256 of the whole. */
export function toChunks(transferId: string, payload: Uint8Array, chunkBytes = CHUNK_BYTES): Chunk[] {
  const count = Math.max(1, Math.ceil(payload.length / chunkBytes));
  const chunks: Chunk[] = [];
  for (let index = 0; index < count; index++) {
    const data = payload.subarray(index * chunkBytes, Math.min(payload.length, (index + 1) * chunkBytes));
    chunks.push({ transferId, index, count, data, sha256: index === count - 1 ? sha256(payload) : new Uint8Array() });
  }
  return chunks;
}

/** A message encoded once for a control stream: its frames as they go to gRPC, and its own encoded size. */
export interface EncodedMessage {
  readonly frames: readonly Uint8Array[];
  /** The message's encoded size (what a participant's egress record counts). */
  readonly bytes: number;
}

/** The stream frame type that carries messages of `typeName`. */
function frameTypeOf(typeName: MessageTypeName): 'ParticipantFrame' | 'CoordinatorFrame' {
  return typeName === 'ParticipantMessage' ? 'ParticipantFrame' : 'CoordinatorFrame';
}

/**
 * Encode a message for a control stream, once: one frame holding it when small, else chunk frames whose data
 * concatenates to its encoding. The frames go to gRPC as they are (the stream's serialiser passes bytes
 * through), and the same EncodedMessage can go to several streams.
 */
export function encodeFrames<M extends object>(typeName: MessageTypeName, message: M, chunkBytes = CHUNK_BYTES): EncodedMessage {
  const frameType = frameTypeOf(typeName);
  // A frame is field 1 (tag 0x0a), the message's length as a varint, then the message.
  const framed = encodeMessage(frameType, { message });
  let header = 1;
  while (framed[header]! & 0x80) header++;
  header++;
  const encoded = framed.subarray(header);
  captureOutgoing(encoded);
  if (encoded.length <= chunkBytes) return { frames: [framed], bytes: encoded.length };
  const frames = toChunks(randomUUID(), encoded, chunkBytes).map((chunk) => encodeMessage(frameType, { chunk }));
  return { frames, bytes: encoded.length };
}

/**
 * A wire tap at the transport, for the test that proves no raw data leaves a participant: with
 * FEDCREDIT_WIRE_CAPTURE=<folder>, every message this process sends is appended, encoded exactly as it goes to
 * gRPC (below TLS), to <folder>/<pid>.bin. Off unless the variable is set.
 */
const captureDir = process.env.FEDCREDIT_WIRE_CAPTURE;
function captureOutgoing(encoded: Uint8Array): void {
  if (captureDir) appendFileSync(join(captureDir, `${process.pid}.bin`), encoded);
}

function protocolError(message: string): FedcreditError {
  return new FedcreditError(ErrorCode.PROTOCOL, message, 'this is a fault of the sending node or of the network; restart that node if it repeats');
}

/**
 * Joins the chunks of one transfer at a time: they must arrive in order, with a constant count, within the byte
 * limit, and match the digest on the last chunk. Used for chunked messages on the control stream and for model
 * downloads. Throws FedcreditError(PROTOCOL) on misuse, after which it accepts a fresh transfer.
 */
export class ChunkJoiner {
  private transferId = '';
  private expected = 0;
  private count = 0;
  private parts: Uint8Array[] = [];
  private bytes = 0;

  constructor(
    /** Largest payload accepted; the coordinator keeps it small until a stream has identified itself. */
    public maxBytes = MAX_MESSAGE_BYTES,
    /** Messages on the control stream are chunked only when large, so they have at least 2 chunks. */
    private readonly minChunks = 1,
  ) {}

  /** A transfer has started and is not complete. */
  get pending(): boolean {
    return this.transferId !== '';
  }

  /** How far the pending transfer got, for error messages. */
  get progress(): string {
    return `transfer ${this.transferId} was incomplete (${this.expected}/${this.count} chunks)`;
  }

  /** Feed one chunk; returns the whole payload when its last chunk arrives. */
  accept(chunk: Chunk | undefined | null): Uint8Array | undefined {
    if (!chunk) this.fail('an empty frame arrived');
    if (!this.transferId) {
      if (chunk.index !== 0) this.fail(`transfer ${chunk.transferId} started at chunk ${chunk.index}, not 0`);
      // Senders may use chunks smaller than ours, but not below 1 KiB: bounds the bookkeeping of a hostile transfer.
      if (chunk.count < this.minChunks || chunk.count > Math.ceil(this.maxBytes / 1024)) this.fail(`transfer ${chunk.transferId} announces ${chunk.count} chunks`);
      this.transferId = chunk.transferId;
      this.count = chunk.count;
    } else if (chunk.transferId !== this.transferId) {
      this.fail(`chunk of transfer ${chunk.transferId} arrived while transfer ${this.transferId} was incomplete`);
    }
    if (chunk.index !== this.expected) this.fail(`chunk ${chunk.index} of transfer ${this.transferId} arrived out of order (expected ${this.expected})`);
    if (chunk.count !== this.count) this.fail(`chunk ${chunk.index} of transfer ${this.transferId} changed the chunk count`);
    this.bytes += chunk.data.length;
    if (this.bytes > this.maxBytes) this.fail(`transfer ${this.transferId} exceeds the ${this.maxBytes}-byte message limit`);
    this.parts.push(chunk.data);
    this.expected++;
    if (this.expected < this.count) return undefined;

    const whole = Buffer.concat(this.parts);
    const id = this.transferId;
    this.reset();
    if (!Buffer.from(sha256(whole)).equals(Buffer.from(chunk.sha256))) this.fail(`transfer ${id} does not match its SHA-256 (corrupted or missing data)`);
    return whole;
  }

  /** Drop the pending transfer (the stream moved on without finishing it). */
  reset(): void {
    this.transferId = '';
    this.expected = 0;
    this.count = 0;
    this.parts = [];
    this.bytes = 0;
  }

  private fail(message: string): never {
    this.reset();
    throw protocolError(message);
  }
}

/**
 * Reassembles chunked messages on one stream. Chunks of a transfer must arrive in order and complete before the
 * next transfer or message; anything else is a protocol error (the sender writes a transfer without interleaving).
 */
export class Reassembler<M> {
  private readonly joiner: ChunkJoiner;

  constructor(
    private readonly typeName: MessageTypeName,
    maxBytes = MAX_MESSAGE_BYTES,
  ) {
    this.joiner = new ChunkJoiner(maxBytes, 2);
  }

  set maxBytes(bytes: number) {
    this.joiner.maxBytes = bytes;
  }

  /** A transfer has started and is not complete. */
  get pending(): boolean {
    return this.joiner.pending;
  }

  /** Feed one frame; returns a complete message when one is ready. Throws FedcreditError(PROTOCOL) on misuse. */
  accept(frame: Frame<M>): M | undefined {
    if (frame.frame === 'message') {
      if (this.joiner.pending) {
        const error = protocolError(`a message arrived while ${this.joiner.progress}`);
        this.joiner.reset();
        throw error;
      }
      return frame.message;
    }
    const whole = this.joiner.accept(frame.chunk);
    if (!whole) return undefined;
    try {
      return decodeMessage<M>(this.typeName, whole);
    } catch (err) {
      throw protocolError(`transfer ${frame.chunk.transferId} does not decode as ${this.typeName}: ${(err as Error).message}`);
    }
  }
}
