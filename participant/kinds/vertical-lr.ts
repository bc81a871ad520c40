/** A vertical-lr job at a party (guest or host): VerticalParty runs the steps the arbiter asks for. */
import type { JobKindName, Refusal } from '../../src/jobs/kind.js';
import type { JobAccepted } from '../../src/wire/messages.js';
import { VerticalParty } from '../vertical-job.js';
import { errorMessage } from '../../src/errors.js';
import type { ParticipantKind, PartyNode } from './kind.js';
import { sampleIds, type IdFormat } from '../../src/psi/ids.js';

/** A vertical job that cannot be rejoined after a restart, logged with its reason and ended as abandoned. */
export function abandonUnrejoinable(node: PartyNode, id: string, kind: JobKindName, why: string): void {
  node.log.warn({ job: id, kind }, `a ${kind} job was interrupted ${why}; it cannot be rejoined`);
  node.store.end(id, 'abandoned');
}

/**
 * The refusal of a vertical training job whose alignment.id_format fits none of this party's first ids (sampleIds),
 * or undefined: refused at the offer, naming the fix, rather than failed at the PSI after the keys are made.
 */
export function idFormatRefusal(node: PartyNode, format: IdFormat): Refusal | undefined {
  const { checked, valid, invalid } = sampleIds(node.partyData.ids(), format);
  if (checked === 0 || valid > 0) return undefined;
  const fix =
    format === 'uscc' ? 'ids that are not unified social credit codes (account or row numbers) need alignment.id_format: any in the job file; else check data.id_column' : 'check data.id_column';
  return ['alignment.id_format', `none of ${node.org}'s first ${checked} ids is a valid ${format} id (e.g. ${invalid.examples.join(', ')}): ${fix}`];
}

/** A vertical party's answer to its offer: all its rows (the PSI picks the shared ones), its data and its bound box key. */
export function verticalAccepted(node: PartyNode, jobId: string, features: string[], job: { box: { publicKey: Uint8Array }; boxKeyBinding(): JobAccepted['boxKeyBinding'] }): JobAccepted {
  return { trainRows: node.rows.rows, validationRows: 0, ...node.dataDescription(jobId, features), boxPublicKey: job.box.publicKey, boxKeyBinding: job.boxKeyBinding() };
}

export const verticalLr: ParticipantKind<'vertical-lr'> = {
  async accept(node, offer, spec) {
    const { config, log, org, rows } = node;
    const role = spec.guest === org ? 'guest' : 'host';
    if (role === 'guest' && !rows.meta.labels) return offer.refuse('data.label_column', `${org} is the job's guest but its data section has no label_column`);
    const wrongIds = idFormatRefusal(node, spec.alignment.id_format);
    if (wrongIds) return offer.refuse(...wrongIds);
    const features = spec.features?.[org] ?? rows.features;
    node.store.save({ id: offer.jobId, specJson: offer.specJson, features });
    const job = new VerticalParty(offer.jobId, spec, org, node.partyData, features, node.verticalIo(offer.jobId), log, node.store.dirOf(offer.jobId));
    job.shareStatistics = config.consent.share_statistics;
    job.binding = node.partyBinding(offer.specJson, [spec.guest, ...spec.hosts]);
    node.addParty(offer.jobId, job.channel);
    log.info({ job: offer.jobId, name: spec.name, purpose: spec.purpose, role, features: features.length }, 'vertical job accepted');
    return offer.accept(verticalAccepted(node, offer.jobId, features, job));
  },
  async restore(node, stored, spec) {
    const job = await VerticalParty.restore(stored.id, spec, node.org, node.partyData, stored.features, node.verticalIo(stored.id), node.log, node.store.dirOf(stored.id)).catch((err) => {
      node.log.warn({ job: stored.id, err: errorMessage(err) }, 'a vertical job could not be restored');
      return undefined;
    });
    if (!job) return abandonUnrejoinable(node, stored.id, spec.kind, 'before this node kept its per-job key, or its data changed since the job aligned its rows');
    job.shareStatistics = node.config.consent.share_statistics;
    // A job restored during its key ceremony signs its new commitment and checks the others' and the setup's keys.
    job.binding = node.partyBinding(stored.specJson, [spec.guest, ...spec.hosts]);
    node.addParty(stored.id, job.channel);
  },
};
