/**
 * A coordinator that deviates from the protocol, for tests of what honest participants do about it: a gRPC server
 * with the federation's real coordinator certificate (so participants connect to it as they would to the real one)
 * that speaks the wire protocol of src/wire/ but sends whatever the test scripts, for example a job's keys with one
 * party's key swapped for its own. It records every message participants send it.
 */
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../../src/log.js';
import { coordinatorServiceDefinition, CHANNEL_OPTIONS, PROTOCOL_VERSION } from '../../src/wire/proto.js';
import { FramedStream, type DuplexCall } from '../../src/wire/stream.js';
import type { Frame } from '../../src/wire/framing.js';
import { serverTransport, type Transport } from '../../src/wire/transport.js';
import type { CoordinatorMessage, ParticipantMessage } from '../../src/wire/messages.js';

export class RogueCoordinator {
  /** Every message a participant sent, in arrival order. */
  readonly received: { org: string; message: ParticipantMessage }[] = [];
  private readonly streams = new Map<string, FramedStream<ParticipantMessage, CoordinatorMessage>>();
  private readonly listeners = new Set<() => void>();

  private constructor(private readonly server: grpc.Server) {}

  /** Listen on `address` (the real coordinator's, once it is stopped) with the coordinator's identity. */
  static async start(address: string, transport: Transport): Promise<RogueCoordinator> {
    const server = new grpc.Server({ ...CHANNEL_OPTIONS });
    const rogue = new RogueCoordinator(server);
    const unimplemented = (_call: unknown, callback?: (err: grpc.ServiceError) => void) =>
      callback?.({ code: grpc.status.UNIMPLEMENTED, details: 'rogue coordinator', name: 'Error', message: 'rogue', metadata: new grpc.Metadata() });
    server.addService(coordinatorServiceDefinition(), {
      connect: (call: grpc.ServerDuplexStream<Frame<ParticipantMessage>, Uint8Array>) => rogue.connect(call),
      submitJob: unimplemented,
      watchJob: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
      getJob: unimplemented,
      downloadModel: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
      readLedger: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
    } as grpc.UntypedServiceImplementation);
    const credentials = serverTransport(transport, createLogger('rogue-coordinator', 'silent')).credentials;
    // The real coordinator's port is free again once it has exited; a participant's reconnect may race the bind.
    for (let tries = 0; ; tries++) {
      try {
        await new Promise<number>((resolve, reject) => server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port))));
        break;
      } catch (err) {
        if (tries >= 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return rogue;
  }

  private connect(call: grpc.ServerDuplexStream<Frame<ParticipantMessage>, Uint8Array>): void {
    let org: string | undefined;
    const stream: FramedStream<ParticipantMessage, CoordinatorMessage> = new FramedStream<ParticipantMessage, CoordinatorMessage>(
      call as unknown as DuplexCall<Frame<ParticipantMessage>, Uint8Array>,
      'ParticipantMessage',
      'CoordinatorMessage',
      {
        onMessage: (message) => {
          if (!org) {
            if (message.body !== 'hello') return;
            org = message.hello.organisation;
            this.streams.set(org, stream);
            void stream.send({ jobId: '', round: 0, body: 'welcome', welcome: { coordinatorVersion: 'rogue', protocolVersion: PROTOCOL_VERSION } }).catch(() => undefined);
          }
          this.received.push({ org, message });
          for (const wake of [...this.listeners]) wake();
        },
        onProtocolError: () => undefined,
        onClose: () => {
          if (org && this.streams.get(org) === stream) this.streams.delete(org);
        },
      },
    );
  }

  /** The first message from `org` (in order of arrival) that `match` accepts, waiting up to `timeoutMs`. */
  waitFor(org: string, match: (m: ParticipantMessage) => boolean, timeoutMs = 60_000): Promise<ParticipantMessage> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.received.find((r) => r.org === org && match(r.message));
        if (!found) return false;
        this.listeners.delete(check);
        clearTimeout(timer);
        resolve(found.message);
        return true;
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(
          new Error(
            `no matching message from ${org} within ${timeoutMs / 1000}s; got: ${this.received
              .filter((r) => r.org === org)
              .map((r) => r.message.body)
              .join(', ')}`,
          ),
        );
      }, timeoutMs);
      if (!check()) this.listeners.add(check);
    });
  }

  async waitConnected(orgs: string[], timeoutMs = 60_000): Promise<void> {
    await Promise.all(orgs.map((org) => this.waitFor(org, (m) => m.body === 'hello', timeoutMs)));
  }

  async send(org: string, message: CoordinatorMessage): Promise<void> {
    const stream = this.streams.get(org);
    if (!stream) throw new Error(`${org} is not connected to the rogue coordinator`);
    await stream.send(message);
  }

  close(): Promise<void> {
    for (const s of this.streams.values()) s.end();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2000);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
