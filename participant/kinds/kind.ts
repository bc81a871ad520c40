/**
 * The participant's half of a job kind (src/jobs/kind.ts declares the rest): what the node does with an offer it
 * accepts once the consent rules passed, and how it rejoins the job after a restart.
 */
import type { ParticipantConfig } from '../../src/config/schemas.js';
import type { JobBinding } from '../../src/crypto/key-binding.js';
import type { LoadedDataset } from '../../src/data/csv.js';
import type { RowStore } from '../../src/data/row-store.js';
import type { JobKindName, SpecOf } from '../../src/jobs/kind.js';
import type { Logger } from '../../src/log.js';
import type { JobAccepted } from '../../src/wire/messages.js';
import type { HorizontalJobSpec } from '../../src/config/schemas.js';
import type { HorizontalJob } from '../horizontal-job.js';
import type { DataDescription } from '../job-state.js';
import type { JobStore, StoredJob } from '../job-store.js';
import type { ScoringQuota } from '../scoring-quota.js';
import type { PartyChannel, PartyIo } from '../vertical-channel.js';
import type { PartyData } from '../vertical-job.js';

/** What the node lends a kind. */
export interface PartyNode {
  readonly org: string;
  readonly config: ParticipantConfig;
  readonly log: Logger;
  readonly rows: RowStore;
  /**
   * The rows a scoring job reads, in memory: the kept rows, and for the guest (`asGuest`) also those kept for scoring
   * only (no label yet). A host never offers its unlabelled rows: they would enter its blinded id set and its partial
   * scores, which its owner did not ask for.
   */
  scoringData(asGuest: boolean): LoadedDataset;
  readonly partyData: PartyData;
  readonly store: JobStore;
  readonly stateDir: string;
  readonly scoringQuota: ScoringQuota;
  verticalIo(jobId: string): PartyIo;
  partyBinding(specJson: string, parties: string[]): JobBinding | undefined;
  /** The job's schema digest, load report and id-set digest, as a jobAccepted reply carries them. */
  dataDescription(jobId: string, features: string[]): DataDescription;
  /** A horizontal job's state, kept by the node for its messages. */
  createJob(id: string, spec: HorizontalJobSpec, features: string[]): Promise<HorizontalJob>;
  /** A vertical or scoring job's party, whose steps and peer payloads the node routes to it. */
  addParty(jobId: string, party: PartyChannel): void;
}

/** An offer whose consent rules passed. */
export interface Offer {
  jobId: string;
  specJson: string;
  submitter: string;
  refuse(code: string, reason: string): Promise<void>;
  accept(reply: JobAccepted): Promise<void>;
}

export interface ParticipantKind<K extends JobKindName = JobKindName> {
  accept(node: PartyNode, offer: Offer, spec: SpecOf<K>): Promise<void>;
  /** Rejoin a job that was running when the node stopped, or end it as abandoned (logging why). */
  restore(node: PartyNode, stored: StoredJob, spec: SpecOf<K>): Promise<void>;
}
