/**
 * TypeScript shapes of the messages in proto/fedcredit/v1/federation.proto, as protobufjs decodes them
 * (camelCase fields, uint64 as number, bytes as Uint8Array, the set oneof member named by `body`/`frame`).
 * test/wire.test.ts round-trips every message type through bytes, so a drift between this file and the proto
 * fails the suite.
 */
import type { KeyBinding } from '../crypto/key-binding.js';
import type { Preprocessing } from '../model/preprocess.js';

export interface Chunk {
  transferId: string;
  index: number;
  count: number;
  data: Uint8Array;
  sha256: Uint8Array;
}

export interface Hello {
  organisation: string;
  softwareVersion: string;
  protocolVersion: number;
  featureColumns: string[];
  hasLabels: boolean;
  /** The newest encoded TreeHead the participant holds; empty or absent if none. */
  newestReceipt?: Uint8Array;
}

export interface JobAccepted {
  trainRows: number;
  validationRows: number;
  schemaHash: Uint8Array;
  boxPublicKey: Uint8Array;
  loadReport: string;
  idSetSha256: Uint8Array;
  /** Null only from a node running --insecure. */
  boxKeyBinding: KeyBinding | null;
}

export type { KeyBinding };

export interface JobRefused {
  code: string;
  reason: string;
}

export interface SealedKey {
  recipient: string;
  sealed: Uint8Array;
}

export interface KeysPublished {
  ckksPublicKey: Uint8Array;
  sealedSecretKeys: SealedKey[];
  paramsFingerprint: Uint8Array;
  publicKeyBinding: KeyBinding | null;
}

export type VectorScheme = 'ckks' | 'plaintext';

export interface EncryptedVector {
  scheme: VectorScheme;
  length: number;
  blocks: Uint8Array[];
  paramsFingerprint: Uint8Array;
  blockSha256: Uint8Array[];
}

/**
 * What a horizontal secure sum adds: feature moments, counts of the quantile search, binning histograms, model updates, or the evaluation histogram
 * of predicted PD (docs/protocol-horizontal.md).
 */
export type SumPurpose = 'moments' | 'quantiles' | 'histogram' | 'update' | 'evaluation';

export interface Contribution {
  purpose: SumPurpose;
  vector: EncryptedVector;
}

export interface ValidationMetrics {
  rows: number;
  auc: number;
  loss: number;
}

export interface AggregateOpened {
  purpose: SumPurpose;
  valuesSha256: Uint8Array;
  values: Uint8Array;
  validation?: ValidationMetrics | null;
}

export interface ErrorReport {
  code: string;
  message: string;
  hint: string;
}

export interface PeerEnvelope {
  peer: string;
  kind: string;
  attempt: number;
  sealed: Uint8Array;
}

export interface DecryptRequest {
  attempt: number;
  ciphertext: Uint8Array;
  count: number;
}

/** Vertical jobs under a collective key: the arbiter asks a party for its share of `party`'s masked gradient. */
export interface GradientShareRequest {
  attempt: number;
  party: string;
  ciphertext: Uint8Array;
}

/** A party's decryption share of `party`'s masked gradient. */
export interface GradientShare {
  attempt: number;
  party: string;
  share: Uint8Array;
}

export interface StepDone {
  step: string;
  attempt: number;
  stateSha256: Uint8Array;
  reportJson: string;
}

export interface DecryptReply {
  attempt: number;
  values: Uint8Array;
}

export interface VerticalSetup {
  ckksPublicKey: Uint8Array;
  galoisKeys: Uint8Array;
  paramsFingerprint: Uint8Array;
  parties: Recipient[];
  guest: string;
  hosts: string[];
  psiSalt: Uint8Array;
}

export type VerticalStep = 'psi' | 'bin' | 'batch' | 'validate' | 'finalize' | 'scorecard' | 'evaluate' | 'score' | 'boost';

export interface StepRequest {
  step: VerticalStep;
  attempt: number;
  epoch: number;
  batch: number;
  argsJson: string;
}

type OneOf<Name extends string, Members extends Record<string, unknown>> = {
  [K in keyof Members]: { [P in Name]: K } & { [P in K]: Members[K] };
}[keyof Members];

export type ParticipantBody = {
  hello: Hello;
  jobAccepted: JobAccepted;
  jobRefused: JobRefused;
  keysPublished: KeysPublished;
  contribution: Contribution;
  aggregateOpened: AggregateOpened;
  error: ErrorReport;
  relay: PeerEnvelope;
  decryptRequest: DecryptRequest;
  stepDone: StepDone;
  thresholdCeremony: ThresholdCeremony;
  decryptionShares: DecryptionShares;
  gradientShare: GradientShare;
};

export type ParticipantMessage = { jobId: string; round: number; nonce: Uint8Array } & OneOf<'body', ParticipantBody>;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A message body with its oneof member, before the job id and round are attached. */
export type ParticipantReply = DistributiveOmit<ParticipantMessage, 'jobId' | 'round' | 'nonce'>;

export interface Welcome {
  coordinatorVersion: string;
  protocolVersion: number;
  /** The coordinator's current encoded TreeHead (empty or absent from a coordinator that sends none). */
  treeHead?: Uint8Array;
  /** RFC 6962 consistency proof from the Hello's receipt to treeHead (empty without a receipt). */
  consistencyProof?: Uint8Array[];
}

export interface JobOffer {
  specJson: string;
  submitter: string;
  lead: string;
}

export interface Recipient {
  organisation: string;
  boxPublicKey: Uint8Array;
  binding: KeyBinding | null;
}

export interface KeygenRequest {
  recipients: Recipient[];
}

export interface KeyDelivery {
  ckksPublicKey: Uint8Array;
  sealedSecretKey: Uint8Array;
  paramsFingerprint: Uint8Array;
  /** The lead's box key and its binding: the sealed secret key is authenticated with that key. */
  lead: Recipient | null;
  publicKeyBinding: KeyBinding | null;
}

/** The threshold CKKS key ceremony, both directions (proto: ThresholdCeremony). */
export interface ThresholdCeremony {
  /** t-of-n adds 'reshare' (each party's Shamir shares, sealed to each receiver) and 'reshared' (the boxes for each receiver). */
  step: 'commit' | 'reveal' | 'key' | 'reshare' | 'reshared';
  parties: KeyShareEntry[];
  paramsFingerprint: Uint8Array;
  publicKeySha256: Uint8Array;
  /** 'reshare' and 'reshared', to participants: every participant's bound box key (proto3 leaves it empty otherwise). */
  recipients?: Recipient[];
  /** The ceremony's attempt (1, 2, … after a restart; proto3 reads 0 when absent). */
  attempt?: number;
}

export interface KeyShareEntry {
  organisation: string;
  commitment: Uint8Array;
  /** Null only from a node running --insecure. */
  commitmentBinding: KeyBinding | null;
  share: Uint8Array;
}

/**
 * Collective decryption of an aggregate. To the coordinator: the sender's one flooded share per block. To the
 * contributors: `combined`, every contributor's shares added (one per block), and each contributor's `sharesSha256`
 * (the digest the ledger records for its shares) without the shares.
 */
export interface DecryptionShares {
  purpose: SumPurpose;
  parties: { organisation: string; shares: Uint8Array[]; sharesSha256: Uint8Array }[];
  combined: Uint8Array[];
}

export interface ContributionRequest {
  purpose: SumPurpose;
  globalWeights: Uint8Array;
  globalWeightsSha256: Uint8Array;
  preprocessing?: Preprocessing | null;
  deadlineUnixMs: number;
  /** Under CKKS: the sum's contributor set with each one's bound box key (empty in plaintext). */
  contributors: Recipient[];
  attempt: number;
}

export interface AggregateReady {
  purpose: SumPurpose;
  sum: EncryptedVector;
  contributors: string[];
  /** t-of-n collective key: the t contributors, in canonical order, whose decryption shares open the sum (else empty). */
  quorum?: string[];
}

export interface JobEnded {
  state: 'succeeded' | 'failed';
  message: string;
  modelSha256: Uint8Array;
}

export interface Receipt {
  seq: number;
  treeHead: Uint8Array;
}

export type CoordinatorBody = {
  welcome: Welcome;
  jobOffer: JobOffer;
  keygenRequest: KeygenRequest;
  keyDelivery: KeyDelivery;
  contributionRequest: ContributionRequest;
  aggregateReady: AggregateReady;
  jobEnded: JobEnded;
  error: ErrorReport;
  receipt: Receipt;
  relay: PeerEnvelope;
  decryptReply: DecryptReply;
  verticalSetup: VerticalSetup;
  stepRequest: StepRequest;
  thresholdCeremony: ThresholdCeremony;
  decryptionShares: DecryptionShares;
  gradientShareRequest: GradientShareRequest;
};

export type CoordinatorMessage = { jobId: string; round: number } & OneOf<'body', CoordinatorBody>;
export type CoordinatorRequest = DistributiveOmit<CoordinatorMessage, 'jobId' | 'round'>;

export type ParticipantFrame = { frame: 'message'; message: ParticipantMessage } | { frame: 'chunk'; chunk: Chunk };
export type CoordinatorFrame = { frame: 'message'; message: CoordinatorMessage } | { frame: 'chunk'; chunk: Chunk };

export interface SubmitJobRequest {
  specYaml: string;
  submitter: string;
}

export interface SubmitJobResponse {
  jobId: string;
}

export interface JobIdRequest {
  jobId: string;
}

export type JobState = 'pending' | 'running' | 'succeeded' | 'failed';

export interface RoundProgress {
  round: number;
  rounds: number;
  participants: string[];
  trainLoss: number;
  validationAuc: number;
  seconds: number;
  dropped: string[];
  unit: 'round' | 'epoch';
}

export interface JobEvent {
  jobId: string;
  unixMs: number;
  state: JobState;
  stage: string;
  message: string;
  progress?: RoundProgress | null;
}

export interface JobStatus {
  jobId: string;
  state: JobState;
  stage: string;
  message: string;
  roundsDone: number;
  rounds: number;
  modelSha256: Uint8Array;
  participants: string[];
}
