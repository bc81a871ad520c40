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
    // The box key its peers will know it by: kept now, so that a node stopped before its keys arrive can rejoin the
    // key ceremony when the coordinator restarts it (its peers and the coordinator keep the key from the acceptance).
    if (spec.encryption.scheme === 'ckks-threshold') node.store.saveBoxKey(offer.jobId, job.state.boxKeyToStore());
    log.info({ job: offer.jobId, name: spec.name, purpose: spec.purpose, submitter: offer.submitter, trainRows: job.state.trainRows, validationRows: job.state.validationRows }, 'job accepted');
    if (spec.encryption.scheme === 'plaintext') log.warn({ job: offer.jobId }, 'PLAINTEXT MODE: this job sends model updates unencrypted (comparison/debugging only)');
    return offer.accept(job.accepted(node.dataDescription(offer.jobId, features)));
  },
  async restore(node, stored, spec) {
    if (spec.encryption.scheme === 'ckks-threshold' && !stored.keys?.secretKey && stored.boxKey) {
      // Stopped during the key ceremony: nothing is encrypted under a key yet, so it rejoins when the coordinator
      // restarts the ceremony, with a fresh share. What an abandoned attempt left (a public key, a record) goes.
      node.store.forgetCeremony(stored.id);
      const job = await node.createJob(stored.id, spec, stored.features);
      job.state.restoreBox(stored.boxKey);
      job.state.binding = node.partyBinding(stored.specJson, spec.participants);
      node.log.info({ job: stored.id }, 'horizontal job restored during its key ceremony; rejoining when the coordinator restarts the ceremony');
      return;
    }
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
    // Signs a new commitment if the coordinator restarts the key ceremony, and checks the peers' keys.
    job.state.binding = node.partyBinding(stored.specJson, spec.participants);
    if (stored.keys) await job.restoreKeys(stored.keys);
    node.log.info({ job: stored.id, ...(sharesGiven === undefined ? {} : { sharesGiven }) }, 'job restored after a restart; rejoining at the next round');
  },
};
