/**
 * A framed, ordered message stream over one gRPC bidirectional call (either end). Outgoing messages are split
 * into chunks when large and written one transfer at a time, honouring back-pressure; incoming frames are
 * reassembled and handed to the consumer in order.
 */
import type { EventEmitter } from 'node:events';
import { ErrorCode, FedcreditError } from '../errors.js';
import { encodeFrames, Reassembler, type EncodedMessage, type Frame, type MessageTypeName } from './framing.js';

/** The part of a grpc-js duplex call (client or server side) that this wrapper uses. */
export interface DuplexCall<In, Out> extends EventEmitter {
  write(frame: Out, cb?: (err?: Error | null) => void): boolean;
  end(): void;
  on(event: 'data', listener: (frame: In) => void): this;
  on(event: 'end' | 'close', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}

export class FramedStream<InMsg, OutMsg extends object> {
  private sending: Promise<void> = Promise.resolve();
  private readonly reassembler: Reassembler<InMsg>;
  private closed = false;

  constructor(
    private readonly call: DuplexCall<Frame<InMsg>, Uint8Array>,
    inType: MessageTypeName,
    private readonly outType: MessageTypeName,
    handlers: { onMessage: (message: InMsg) => void; onProtocolError: (err: Error) => void; onClose: (err?: Error) => void },
  ) {
    this.reassembler = new Reassembler<InMsg>(inType);
    call.on('data', (frame) => {
      let message: InMsg | undefined;
      try {
        message = this.reassembler.accept(frame);
      } catch (err) {
        handlers.onProtocolError(err as Error);
        return;
      }
      if (message !== undefined) handlers.onMessage(message);
    });
    const close = (err?: Error) => {
      if (this.closed) return;
      this.closed = true;
      handlers.onClose(err);
    };
    call.on('end', () => {
      // A stream that ends mid-transfer has truncated a message: a protocol error, not a clean close.
      if (this.reassembler.pending) handlers.onProtocolError(new FedcreditError(ErrorCode.PROTOCOL, 'the stream ended in the middle of a chunked transfer'));
      close();
    });
    call.on('close', () => close());
    call.on('error', (err) => close(err));
  }

  /** Cap on one incoming message (reassembled), e.g. small until the peer has identified itself. */
  set maxMessageBytes(bytes: number) {
    this.reassembler.maxBytes = bytes;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Queue a message, or one encoded ahead (encodeFrames: to send the same message on several streams);
   * resolves with its encoded size once all its frames are handed to gRPC. Sends never interleave.
   */
  send(message: OutMsg | EncodedMessage): Promise<number> {
    const next = this.sending.then(() => this.writeFrames(message));
    this.sending = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  private async writeFrames(message: OutMsg | EncodedMessage): Promise<number> {
    const { frames, bytes } = isEncoded(message) ? message : encodeFrames(this.outType, message);
    for (const frame of frames) {
      if (this.closed) throw new Error('stream closed');
      const flushed = this.call.write(frame);
      if (!flushed) {
        await new Promise<void>((resolve) => {
          const done = () => {
            this.call.off('drain', done).off('close', done).off('error', done);
            resolve();
          };
          this.call.once('drain', done).once('close', done).once('error', done);
        });
      }
    }
    return bytes;
  }

  end(): void {
    if (!this.closed) this.call.end();
  }
}

function isEncoded(message: object): message is EncodedMessage {
  return Array.isArray((message as EncodedMessage).frames) && typeof (message as EncodedMessage).bytes === 'number';
}
