/** A scoring job at a party: ScoringParty computes its partial scores with the part it kept from the training job. */
import { join } from 'node:path';
import { ErrorCode, errorMessage, isFedcreditError } from '../../src/errors.js';
import { requestedIdList, ScoringParty } from '../vertical-score.js';
import type { ParticipantKind } from './kind.js';
import { abandonUnrejoinable } from './vertical-lr.js';

export const verticalScore: ParticipantKind<'vertical-score'> = {
  async accept(node, offer, spec) {
    // Before the quota: a job the guest did not ask for must not use up its owner's requests of the day.
    let idsFile: string | undefined;
    if (spec.guest === node.org) {
      try {
        idsFile = requestedIdList(join(node.stateDir, 'score-requests'), spec, node.org);
      } catch (err) {
        return offer.refuse('ids_file', errorMessage(err));
      }
    }
    const admitted = node.scoringQuota.admit(offer.jobId, spec.model_job);
    if (admitted.refused) return offer.refuse(...admitted.refused);
    node.store.save({ id: offer.jobId, specJson: offer.specJson, features: [] });
    let job: ScoringParty;
    try {
      job = new ScoringParty(
        offer.jobId,
        spec,
        node.org,
        node.scoringData(spec.guest === node.org),
        node.verticalIo(offer.jobId),
        node.log,
        node.store.dirOf(offer.jobId),
        node.store.dirOf(spec.model_job),
        idsFile,
      );
    } catch (err) {
      node.store.end(offer.jobId, 'refused');
      // Only a missing model part is the request's fault (a model this party never kept); anything else is the party's
      // own state (columns no longer declared, a calibration that diverged), whose fix is its own hint.
      if (isFedcreditError(err) && err.code === ErrorCode.NOT_FOUND) return offer.refuse('model', errorMessage(err));
      return offer.refuse('', isFedcreditError(err) && err.hint ? `${errorMessage(err)} (fix: ${err.hint})` : errorMessage(err));
    }
    job.binding = node.partyBinding(offer.specJson, [spec.guest, ...spec.hosts]);
    job.quota = node.scoringQuota;
    node.addParty(offer.jobId, job.channel);
    node.log.info({ job: offer.jobId, modelJob: spec.model_job, role: job.role }, 'scoring job accepted');
    return offer.accept({
      trainRows: 0,
      validationRows: 0,
      schemaHash: new Uint8Array(),
      boxPublicKey: job.box.publicKey,
      loadReport: '',
      idSetSha256: new Uint8Array(),
      boxKeyBinding: job.boxKeyBinding(),
    });
  },
  // The guest read and deleted its list of ids at the offer: a scoring job is not rejoined.
  restore: async (node, stored, spec) => abandonUnrejoinable(node, stored.id, spec.kind, '(a scoring job is asked again, not resumed)'),
};
