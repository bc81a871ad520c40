/**
 * A data owner's caps on scoring, so that scoring cannot be turned into a free membership oracle: every request
 * tells the requesting guest which of the listed enterprises a host holds. The owner's consent caps the requests
 * against one model per rolling day and the ids in one request; a request beyond either is refused, naming the rule.
 * Admitted requests are kept in `<state_dir>/scoring-requests.jsonl` (mode 0600), so the count survives a restart.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, FedcreditError } from '../src/errors.js';
import type { PsiLink } from '../src/psi/stream.js';
import { streamOf } from '../src/psi/kinds.js';
import { POINT_BYTES } from '../src/psi/x25519.js';

export interface ScoringCaps {
  max_requests_per_model_per_day: number;
  max_ids_per_request: number;
}

const DAY_MS = 86_400_000;

export class ScoringQuota {
  private readonly file: string;

  constructor(
    stateDir: string,
    private readonly caps: ScoringCaps,
  ) {
    this.file = join(stateDir, 'scoring-requests.jsonl');
  }

  /** Admit a scoring job against `modelJob` now, or say which rule refuses it. */
  admit(jobId: string, modelJob: string, now = Date.now()): { refused: [string, string] } | { refused?: undefined } {
    const since = now - DAY_MS;
    const lines = existsSync(this.file) ? readFileSync(this.file, 'utf8').split('\n').filter(Boolean) : [];
    const recent = lines.map((l) => JSON.parse(l) as { at: number; model: string; job: string }).filter((r) => r.model === modelJob && r.at > since && r.job !== jobId);
    const cap = this.caps.max_requests_per_model_per_day;
    if (recent.length >= cap) {
      const next = new Date(Math.min(...recent.map((r) => r.at)) + DAY_MS).toISOString();
      return {
        refused: [
          'consent.scoring.max_requests_per_model_per_day',
          `${recent.length} scoring requests against model ${modelJob} in the last 24 hours; this data owner allows ${cap} (the next is possible after ${next})`,
        ],
      };
    }
    appendFileSync(this.file, JSON.stringify({ at: now, model: modelJob, job: jobId }) + '\n', { mode: 0o600 });
    return {};
  }

  /** The refusal of a request listing `ids` enterprises (`atLeast`: counted so far), if that is more than allowed. */
  refusalForIds(ids: number, atLeast = false): FedcreditError | undefined {
    const cap = this.caps.max_ids_per_request;
    if (ids <= cap) return undefined;
    return new FedcreditError(
      ErrorCode.JOB_REFUSED,
      `consent.scoring.max_ids_per_request: the scoring request lists ${atLeast ? 'at least ' : ''}${ids} enterprises; this data owner allows ${cap} per request`,
      'split the request into batches of at most that many ids, or ask the data owner to raise consent.scoring.max_ids_per_request',
    );
  }

  /**
   * A host's PSI link that counts the guest's blinded ids as they arrive and stops the exchange, before they are
   * answered, as soon as the request lists more than the owner allows.
   */
  capGuestIds(link: PsiLink): PsiLink {
    let points = 0;
    return {
      ...link,
      receive: async (kind) => {
        const bytes = await link.receive(kind);
        if (streamOf(kind)?.stream === 'psi.guest_blinded') {
          points += Math.floor(bytes.length / POINT_BYTES);
          const refusal = this.refusalForIds(points, true);
          if (refusal) throw refusal;
        }
        return bytes;
      },
    };
  }
}
