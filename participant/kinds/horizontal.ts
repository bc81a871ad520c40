/** A horizontal job at a participant: HorizontalJob (participant/horizontal-job.ts) answers the coordinator's secure sums. */
import { errorMessage } from '../../src/errors.js';
import type { ParticipantKind } from './kind.js';

export const horizontal: ParticipantKind<'horizontal'> = {
  async accept(node, offer, spec) {
    const { log, org, rows } = node;
    if (!rows.meta.labels) return offer.refuse('data.label_column', `${org}'s data section has no label_column; horizontal participants hold labels`);
    const features = spec.features ?? rows.features;
    const job = await node.createJob(offer.jobId, spec, features);
    job.state.binding = node.partyBinding(offer.specJson, spec.participants);
    node.store.save({ id: offer.jobId, specJson: offer.specJson, features });
    log.info({ job: offer.jobId, name: spec.name, purpose: spec.purpose, submitter: offer.submitter, trainRows: job.state.trainRows, validationRows: job.state.validationRows }, 'job accepted');
    if (spec.encryption.scheme === 'plaintext') log.warn({ job: offer.jobId }, 'PLAINTEXT MODE: this job sends model updates unencrypted (comparison/debugging only)');
    return offer.accept(job.accepted(node.dataDescription(offer.jobId, features)));
  },
  async restore(node, stored, spec) {
    if (spec.encryption.scheme !== 'plaintext' && !stored.keys?.secretKey) {
      node.log.warn({ job: stored.id }, 'a job was interrupted before its keys arrived; it cannot be rejoined');
      node.store.end(stored.id, 'abandoned');
      return;
    }
    let sharesGiven: number | undefined;
    if (spec.encryption.scheme === 'ckks-threshold') {
      // Without its record of decryption shares given, the node could be asked again for a share it gave.
      try {
        sharesGiven = node.store.sharesGiven(stored.id).given?.issued.length;
      } catch (err) {
        node.log.warn({ job: stored.id, err: errorMessage(err) }, 'the record of decryption shares given does not read');
      }
      if (sharesGiven === undefined) {
        node.log.warn({ job: stored.id }, "a job's record of decryption shares given is not in its folder; it cannot be rejoined");
        node.store.end(stored.id, 'abandoned');
        return;
      }
    }
    const job = await node.createJob(stored.id, spec, stored.features);
    if (stored.keys) await job.restoreKeys(stored.keys);
    node.log.info({ job: stored.id, ...(sharesGiven === undefined ? {} : { sharesGiven }) }, 'job restored after a restart; rejoining at the next round');
  },
};
