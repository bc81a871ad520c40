/**
 * A data owner changes its consent by editing its participant config, and may do so while its node runs: it revokes
 * a job kind or a submitter, lowers max_rounds. The node reads the file again at each offer, so the change holds from
 * the next job without a restart (a job already accepted runs on). What the rows were loaded under cannot change
 * under a running node: the data section, consent.columns (the columns read), whether a vertical kind is allowed (a
 * guest then keeps its rows without a label) and the organisation. When one of those changed, or the file no longer
 * reads as a valid config, every offer is refused, naming the cause, until the file is fixed or the node restarted.
 * A refusal travels to the coordinator and the submitter: it names no path of this machine (the node's log does).
 */
import { loadYamlConfig } from '../src/config/load.js';
import { ParticipantConfig } from '../src/config/schemas.js';
import { errorMessage } from '../src/errors.js';

export type ConsentNow = { consent: ParticipantConfig['consent']; changed: boolean } | { refusal: string };

/** The consent of `file` as it reads now, against the config `started` the node loaded its rows under. */
export function consentNow(file: string, started: ParticipantConfig): ConsentNow {
  let now: ParticipantConfig;
  try {
    now = loadYamlConfig(file, ParticipantConfig, 'participant');
  } catch (err) {
    return {
      refusal: `its participant config no longer reads as valid, so this node cannot tell its owner's consent (${errorMessage(err).split(file).join('the config')}); fix the file: offers are refused until then`,
    };
  }
  const loadedUnder = (c: ParticipantConfig) => JSON.stringify([c.organisation, c.data, c.consent.columns ?? null, c.consent.job_kinds.some((k) => k !== 'horizontal')]);
  if (loadedUnder(now) !== loadedUnder(started))
    return {
      refusal:
        'its participant config changed since this node started in what its rows were loaded under (organisation, data, consent.columns, or whether a vertical job kind is allowed); ' +
        'restart the node (fedcredit participant --config FILE) to take up the change: offers are refused until then',
    };
  return { consent: now.consent, changed: JSON.stringify(now.consent) !== JSON.stringify(started.consent) };
}
