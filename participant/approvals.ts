/**
 * Manual approval of job offers (consent.approval: manual). The node writes each offer it holds to
 * <state_dir>/approvals/pending/<job>.json; the data owner decides with `fedcredit participant approve|reject`,
 * which writes <state_dir>/approvals/decided/<job>.json; the node, polling, answers the coordinator.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JobSpec } from '../src/config/schemas.js';
import { ErrorCode, FedcreditError } from '../src/errors.js';

export interface PendingOffer {
  jobId: string;
  name: string;
  kind: string;
  purpose: string;
  submitter: string;
  columns: string[];
  /** What the job's sections make this party send beyond its training messages (offerShares). */
  shares?: string[];
  receivedAt: string;
}

/**
 * What the offered job's optional sections make `org` send beyond a training protocol's messages (the cases of
 * docs/threat-model.md, "What the credit toolkit shares by design"), for the owner to read before approving.
 */
export function offerShares(spec: JobSpec, org: string): string[] {
  if (spec.kind !== 'vertical-lr' && spec.kind !== 'vertical-boost') return [];
  const host = spec.hosts.includes(org);
  const out: string[] = [];
  if (spec.kind === 'vertical-lr') {
    if (host && spec.hosts.length === 1)
      out.push(
        'as the only host, its partial scores of the validation, test and scored enterprises reach the guest as they are (no other host masks them; consent.min_vertical_hosts: 2 refuses such jobs)',
      );
    if (host && spec.binning) out.push("binning: the rows and the guest's defaults in each of its bins, to the guest (not where the bins are cut)");
    if (host && spec.scorecard) out.push("scorecard: each of its features' bin bounds, WOE and points, to the guest; at scoring, the points its top reason features lost");
    if (spec.statistics) out.push('statistics: count, mean, sd, min, max and missing rate of its features, into the ledger if consent.share_statistics allows');
  }
  if (spec.fairness?.party === org) out.push(`fairness: the ${spec.fairness.column} of each held-out enterprise, to the guest`);
  return out;
}

export interface Decision {
  approved: boolean;
  reason: string;
  decidedAt: string;
}

export class Approvals {
  private readonly pendingDir: string;
  private readonly decidedDir: string;

  constructor(stateDir: string) {
    this.pendingDir = join(stateDir, 'approvals', 'pending');
    this.decidedDir = join(stateDir, 'approvals', 'decided');
  }

  hold(offer: PendingOffer): void {
    mkdirSync(this.pendingDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(this.pendingDir, `${offer.jobId}.json`), JSON.stringify(offer, null, 2), { mode: 0o600 });
  }

  /** Offers waiting for the data owner. */
  pending(): PendingOffer[] {
    if (!existsSync(this.pendingDir)) return [];
    return readdirSync(this.pendingDir).map((f) => JSON.parse(readFileSync(join(this.pendingDir, f), 'utf8')) as PendingOffer);
  }

  /** The data owner's decision on a pending offer (the CLI side). */
  decide(jobId: string, approved: boolean, reason: string): PendingOffer {
    const file = join(this.pendingDir, `${jobId}.json`);
    if (!existsSync(file)) {
      const waiting = this.pending().map((p) => p.jobId);
      throw new FedcreditError(
        ErrorCode.NOT_FOUND,
        `no offer of job ${jobId} is waiting for approval${waiting.length ? ` (waiting: ${waiting.join(', ')})` : ''}`,
        'list them with `fedcredit participant pending --config <config>`',
      );
    }
    const offer = JSON.parse(readFileSync(file, 'utf8')) as PendingOffer;
    mkdirSync(this.decidedDir, { recursive: true, mode: 0o700 });
    const decision: Decision = { approved, reason, decidedAt: new Date().toISOString() };
    writeFileSync(join(this.decidedDir, `${jobId}.json`), JSON.stringify(decision), { mode: 0o600 });
    return offer;
  }

  /** Wait for the decision (polling; the CLI runs in another process), or refuse at the timeout. */
  async wait(jobId: string, timeoutMs: number, isCancelled: () => boolean): Promise<Decision> {
    const file = join(this.decidedDir, `${jobId}.json`);
    const deadline = Date.now() + timeoutMs;
    try {
      while (Date.now() < deadline && !isCancelled()) {
        if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Decision;
        await new Promise((r) => setTimeout(r, 250));
      }
      return { approved: false, reason: `no decision within consent.approval_timeout_s (${timeoutMs / 1000}s)`, decidedAt: new Date().toISOString() };
    } finally {
      rmSync(join(this.pendingDir, `${jobId}.json`), { force: true });
    }
  }
}
