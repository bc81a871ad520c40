/** Data-use rules every kind that trains on an owner's data is checked against; each kind composes them in order. */
import { binningConflict } from '../credit/settle.js';
import type { BinningSpec, VerticalJobSpec } from '../config/schemas.js';
import { likelyField } from '../config/load.js';
import type { DataOwner, Refusal } from './kind.js';

export function plaintextRefusal(scheme: string, owner: DataOwner): Refusal | undefined {
  if (scheme === 'plaintext' && !owner.consent.allow_plaintext) return ['consent.allow_plaintext', 'the job runs in plaintext mode (nothing encrypted) and consent.allow_plaintext is false'];
  return undefined;
}

export function roundsRefusal(count: number, unit: 'rounds' | 'epochs' | 'trees', owner: DataOwner): Refusal | undefined {
  if (count > owner.consent.max_rounds) return ['consent.max_rounds', `the job asks for ${count} ${unit}; consent.max_rounds is ${owner.consent.max_rounds}`];
  return undefined;
}

/** Why a job's columns cannot be used: not consented to (consent.columns), or not declared at all. */
export function columnRefusal(features: string[], owner: DataOwner): Refusal | undefined {
  const missing = features.filter((f) => !owner.offered.includes(f));
  if (missing.length === 0) return undefined;
  const withheld = missing.filter((f) => owner.declared.includes(f));
  if (withheld.length > 0) return ['consent.columns', `the job asks for ${withheld.join(', ')}, which consent.columns does not allow (allowed: ${owner.offered.join(', ')})`];
  // A name close to one the owner offers is most likely a typo of it (`MonthlyIncom`); the offered names are no secret
  // from the submitter, as the consent.columns refusal above lists them.
  const named = missing.map((f) => {
    const meant = likelyField(f, owner.offered);
    return meant ? `${f} (did you mean ${meant}?)` : f;
  });
  return ['data.features', `the job uses columns this participant does not offer: ${named.join(', ')}`];
}

export function binningRefusal(binning: BinningSpec | undefined, features: string[], owner: DataOwner): Refusal | undefined {
  return binningConflict(
    binning,
    features.map((name) => ({ name, category: name in owner.levels })),
  );
}

/** Why the owner cannot give the groups of a job's fairness figures: the column is not among its group columns. */
export function fairnessRefusal(fair: VerticalJobSpec['fairness'], owner: DataOwner): Refusal | undefined {
  if (fair?.party !== owner.org || owner.groupColumns.includes(fair.column)) return undefined;
  return ['data.group_columns', `the job groups its fairness figures by ${fair.column}, which ${owner.org} does not list in data.group_columns (listed: ${owner.groupColumns.join(', ') || 'none'})`];
}

/**
 * A host of a vertical-lr job with fewer hosts than its consent.min_vertical_hosts: with one host, the secure sum of
 * the hosts' partial scores (docs/protocol-vertical.md §4) is that host's partial scores, which reach the guest as
 * they are.
 */
export function hostCountRefusal(spec: { guest: string; hosts: readonly string[] }, owner: DataOwner): Refusal | undefined {
  const least = owner.consent.min_vertical_hosts;
  if (owner.org === spec.guest || spec.hosts.length >= least) return undefined;
  const hosts = `${spec.hosts.length} host${spec.hosts.length === 1 ? '' : 's'} (${spec.hosts.join(', ')})`;
  return [
    'consent.min_vertical_hosts',
    `the job has ${hosts} and ${owner.org} takes part as a host only with at least ${least}, so that the guest sees its partial scores summed with another host's, never alone: add hosts to the job, or the data owner lowers consent.min_vertical_hosts`,
  ];
}
