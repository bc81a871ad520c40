/**
 * How a vertical LR step reaches the other parties of its job and the arbiter, for one attempt of one step. The
 * participant's implementation seals each payload to its recipient and relays it through the coordinator
 * (participant/vertical-channel.ts); the in-memory twin (memory-port.ts) connects parties in one process. A step
 * never sees which.
 */
import type { PsiLink } from '../../psi/stream.js';
import type { PayloadKind, PayloadOf, ShareKind } from './payloads.js';

export interface PeerPort {
  /** This party's organisation. */
  readonly self: string;
  readonly guest: string;
  readonly hosts: readonly string[];
  send<K extends PayloadKind>(to: string, kind: K, value: PayloadOf<K>): Promise<void>;
  /** The payload of `kind` from `from` in this attempt of the step; fails at the step deadline. */
  receive<K extends PayloadKind>(from: string, kind: K): Promise<PayloadOf<K>>;
  /** The arbiter's `count` class sums of this party's masked gradient (its Opener, reached however the port reaches it). */
  openGradient(masked: Uint8Array, count: number): Promise<Float64Array>;
  /**
   * A host's share of its partial scores (or, as `score.points_share`, its scorecard points) of `rows`, masked
   * pairwise with the other hosts for `purpose` (each purpose masks with its own pads), sent to the guest.
   */
  sendScoreShare(scores: Float64Array, purpose: string, kind?: ShareKind): Promise<void>;
  /** The guest's sum of the hosts' shares of `rows` values (no single host's values are visible). */
  receiveScoreSum(rows: number, kind?: ShareKind): Promise<Float64Array>;
  /** This party's PSI streams with `peer` in this attempt of the step (src/psi/stream.ts numbers their chunks). */
  psiLink(peer: string): PsiLink;
  /** Throws once a newer attempt of the step has begun (or the job ended): long work calls it as it goes. */
  checkpoint(): void;
  /** Whether this attempt is still the one to run (checkpoint without the throw). */
  current(): boolean;
}

/** A step's attempt gave way to a newer one: its work stops quietly. */
export class Superseded extends Error {}
