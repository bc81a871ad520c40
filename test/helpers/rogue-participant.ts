/**
 * An in-process participant that follows the protocol honestly except where a test tells it to misbehave: it
 * uses the library's own ParticipantJob for keys, moments and decryption, and replaces its model updates with
 * whatever `corruptUpdate` returns. Used to show the coordinator rejects bad input and keeps serving the others.
 */
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { dialed, jobBinding, type Transport } from '../../src/wire/transport.js';
import { ParticipantJob, schemaHash } from '../../participant/job-state.js';
import { HorizontalJobSpec as JobSpec } from '../../src/config/schemas.js';
import type { RowStore } from '../../src/data/row-store.js';
import { StoredSplit } from '../../src/data/split.js';
import { loadTf } from '../../src/model/tf.js';
import { coordinatorServiceDefinition, PROTOCOL_VERSION } from '../../src/wire/proto.js';
import type { Frame } from '../../src/wire/framing.js';
import { toFloat32 } from '../../src/fl/vector-codec.js';
import { openedReport } from '../../src/fl/secure-sum-round.js';
import { FramedStream, type DuplexCall } from '../../src/wire/stream.js';
import type { CoordinatorMessage, EncryptedVector, ErrorReport, ParticipantMessage, ParticipantReply } from '../../src/wire/messages.js';

const Client = grpc.makeGenericClientConstructor(coordinatorServiceDefinition(), 'Coordinator');

export class RogueParticipant {
  readonly errors: ErrorReport[] = [];
  private client?: grpc.Client;
  private stream?: FramedStream<CoordinatorMessage, ParticipantMessage>;
  private job?: ParticipantJob;
  private queue: Promise<void> = Promise.resolve();
  private transport?: Transport;

  constructor(
    readonly organisation: string,
    private readonly data: RowStore,
    private readonly corruptUpdate: (honest: EncryptedVector, values: Float64Array) => Promise<EncryptedVector> | EncryptedVector,
  ) {}

  /** A rogue is an insider: it connects with a participant certificate of its own (or plaintext on an insecure federation). */
  connect(address: string, transport: Transport): Promise<void> {
    this.transport = transport;
    return new Promise((resolve) => {
      this.client = dialed(Client, address, transport);
      const call = (this.client as unknown as { connect(): DuplexCall<Frame<CoordinatorMessage>, Uint8Array> }).connect();
      this.stream = new FramedStream<CoordinatorMessage, ParticipantMessage>(call, 'CoordinatorMessage', 'ParticipantMessage', {
        onMessage: (m) => {
          if (m.body === 'welcome') resolve();
          this.queue = this.queue.then(() => this.handle(m)).then(() => undefined);
        },
        onProtocolError: () => undefined,
        onClose: () => undefined,
      });
      void this.stream.send({
        jobId: '',
        round: 0,
        nonce: randomBytes(16),
        body: 'hello',
        hello: { organisation: this.organisation, softwareVersion: 'rogue', protocolVersion: PROTOCOL_VERSION, featureColumns: this.data.features, hasLabels: true },
      });
    });
  }

  private send(to: CoordinatorMessage, body: ParticipantReply): Promise<number> {
    return this.stream!.send({ jobId: to.jobId, round: to.round, ...body } as ParticipantMessage);
  }

  private async handle(m: CoordinatorMessage): Promise<unknown> {
    switch (m.body) {
      case 'jobOffer': {
        const spec = JobSpec.parse(JSON.parse(m.jobOffer.specJson));
        const { tf } = await loadTf();
        const idx = this.data.features.map((_, i) => i);
        this.job = new ParticipantJob(m.jobId, spec, this.organisation, this.data.features, await StoredSplit.create(this.data, idx, 0.2, spec.training.seed), tf);
        // An insider signs its own key honestly: its misbehaviour is in its updates.
        this.job.binding = jobBinding(this.transport!, m.jobOffer.specJson, spec.participants);
        return this.send(m, {
          body: 'jobAccepted',
          jobAccepted: {
            trainRows: this.job.trainRows,
            validationRows: this.job.validationRows,
            schemaHash: schemaHash(
              this.data.features,
              this.data.features.map(() => 'number'),
            ),
            boxPublicKey: this.job.box.publicKey,
            loadReport: '',
            idSetSha256: new Uint8Array(32),
            boxKeyBinding: this.job.boxKeyBinding(),
          },
        });
      }
      case 'keyDelivery':
        return this.job!.installKeys(m.keyDelivery);
      case 'contributionRequest': {
        const req = m.contributionRequest;
        if (req.purpose === 'moments') {
          return this.send(m, {
            body: 'contribution',
            contribution: { purpose: 'moments', vector: await this.job!.encode(await this.job!.localMoments(), 'moments', this.job!.sumMask(m.round, req)) },
          });
        }
        // The quantile search's counts honestly too: the rogues corrupt their model updates only.
        if (req.purpose === 'quantiles') {
          return this.send(m, {
            body: 'contribution',
            contribution: { purpose: 'quantiles', vector: await this.job!.encode(await this.job!.localQuantileCounts(), 'quantiles', this.job!.sumMask(m.round, req)) },
          });
        }
        const values = await this.job!.localUpdate(m.round, toFloat32(req.globalWeights), req.preprocessing!);
        const vector = await this.corruptUpdate(await this.job!.encode(values, 'update', this.job!.sumMask(m.round, req)), values);
        return this.send(m, { body: 'contribution', contribution: { purpose: 'update', vector } });
      }
      case 'aggregateReady': {
        const values = await this.job!.decode(m.aggregateReady.sum, m.aggregateReady.sum.length);
        if (m.aggregateReady.purpose === 'moments') this.job!.setMoments(values);
        if (m.aggregateReady.purpose === 'quantiles') this.job!.advanceQuantiles(values);
        return this.send(m, { body: 'aggregateOpened', aggregateOpened: openedReport(m.aggregateReady.purpose, values, this.organisation, m.aggregateReady.contributors, null) });
      }
      case 'error':
        this.errors.push(m.error);
        return;
      default:
        return;
    }
  }

  close(): void {
    this.stream?.end();
    this.job?.dispose();
    this.client?.close();
  }
}
