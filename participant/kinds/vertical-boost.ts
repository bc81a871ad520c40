/** A vertical-boost job at a party (guest or host): BoostParty runs the steps the coordinator asks for. */
import { BoostParty } from '../boost-job.js';
import type { ParticipantKind } from './kind.js';
import { abandonUnrejoinable, idFormatRefusal, verticalAccepted } from './vertical-lr.js';

export const verticalBoost: ParticipantKind<'vertical-boost'> = {
  async accept(node, offer, spec) {
    const { log, org, rows } = node;
    const role = spec.guest === org ? 'guest' : 'host';
    if (role === 'guest' && !rows.meta.labels) return offer.refuse('data.label_column', `${org} is the job's guest but its data section has no label_column`);
    const wrongIds = idFormatRefusal(node, spec.alignment.id_format);
    if (wrongIds) return offer.refuse(...wrongIds);
    const features = spec.features?.[org] ?? rows.features;
    node.store.save({ id: offer.jobId, specJson: offer.specJson, features });
    const job = new BoostParty(offer.jobId, spec, org, node.partyData, features, node.verticalIo(offer.jobId), log, node.store.dirOf(offer.jobId), node.config.consent.min_node_rows);
    job.binding = node.partyBinding(offer.specJson, [spec.guest, ...spec.hosts]);
    node.addParty(offer.jobId, job.channel);
    log.info({ job: offer.jobId, name: spec.name, purpose: spec.purpose, role, features: features.length }, 'vertical-boost job accepted');
    return offer.accept(verticalAccepted(node, offer.jobId, features, job));
  },
  // The trees are grown in memory in one step: a node that restarts mid-job cannot rejoin it.
  restore: async (node, stored, spec) => abandonUnrejoinable(node, stored.id, spec.kind, 'while its trees were grown in memory (a boosting job restarts from the beginning)'),
};
