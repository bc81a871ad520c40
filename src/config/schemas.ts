/**
 * The three YAML configs a federation runs on. docs/configuration.md documents every field; the defaults here are
 * the documented ones.
 */
import { z } from 'zod';
import { DatasetSpec } from '../data/schema.js';
import { ModelSpec } from './model-spec.js';
import { DEFAULT_CKKS_PARAMS, THRESHOLD_CKKS_PARAMS } from '../he/params.js';

const address = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'an address is host:port, e.g. 127.0.0.1:7700 (port 0 picks a free one)');
const orgName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'an organisation name is lower-case letters, digits and dashes, e.g. `tax-bureau`');

/** Where a node's certificate, key and the federation CA are (`fedcredit pki issue` writes such a folder). */
const TlsSection = z
  .object({
    /** Folder with ca.pem, cert.pem and key.pem, relative to the config file. */
    dir: z.string().min(1),
    /** Coordinator only: the CA's revocation list, reloaded when it changes (relative to the config file). */
    crl: z.string().min(1).optional(),
  })
  .strict();

export const CoordinatorConfig = z
  .object({
    /** Mutual TLS (the default and the only mode outside tests): without it the coordinator runs only with --insecure. */
    tls: TlsSection.optional(),
    listen: address.default('127.0.0.1:7700'),
    /** Name that signs the coordinator's ledger entries. */
    name: orgName.default('coordinator'),
    state_dir: z.string().default('./fedcredit-state/coordinator'),
    /** The audit ledger folder (entries.log, blobs/, signers.json), relative to state_dir. */
    ledger_dir: z.string().default('ledger'),
    log_level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    /** Seconds a participant has to answer a job offer. */
    offer_timeout_s: z.number().positive().default(60),
    /** Seconds a participant's connection may leave the coordinator's liveness pings unanswered before it is unreachable. */
    liveness_timeout_s: z.number().min(1).default(20),
  })
  .strict();
export type CoordinatorConfig = z.infer<typeof CoordinatorConfig>;

export const ParticipantConfig = z
  .object({
    organisation: orgName,
    /** This node's certificate (role participant, organisation as above), key and the federation CA. */
    tls: TlsSection.omit({ crl: true }).optional(),
    coordinator: address,
    /** Where the node keeps its own record: what it sent and received, and the coordinator's signed receipts.
     * Relative to the config file; default fedcredit-state/<organisation>. */
    state_dir: z.string().optional(),
    log_level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    data: DatasetSpec,
    consent: z
      .object({
        /** Job kinds this data owner agrees to take part in. */
        job_kinds: z
          .array(z.enum(['horizontal', 'vertical-lr', 'vertical-boost']))
          .min(1)
          .default(['horizontal', 'vertical-lr']),
        /** Organisations allowed to submit jobs that use this data; `*` allows any. */
        submitters: z.array(z.string()).min(1).default(['*']),
        max_rounds: z.number().int().positive().default(1000),
        /** Refuse plaintext-mode jobs unless set: updates would cross the wire unencrypted. */
        allow_plaintext: z.boolean().default(false),
        /** Columns any job may use; the others are never read from the file. Default: every declared feature. */
        columns: z.array(z.string().min(1)).min(1).optional(),
        /** Refuse a job that would use fewer of this owner's rows (horizontal) or aligned enterprises (vertical). */
        min_rows: z.number().int().positive().default(1),
        /**
         * vertical-boost, as a host: the fewest rows of a tree node whose histogram or split it answers (smaller
         * nodes would tell the guest single enterprises' bins). A job whose boosting.min_child_weight allows smaller
         * children is refused at the offer.
         */
        min_node_rows: z.number().int().positive().default(20),
        /**
         * vertical-lr, as a host: the fewest hosts a job must have. The hosts' partial scores of the validation, test
         * and scored enterprises reach the guest as one pairwise-masked sum; a lone host's reach it as they are. 1
         * (the default) takes part anyway; 2 refuses jobs in which this owner would be the only host.
         */
        min_vertical_hosts: z.number().int().positive().default(1),
        /** `manual`: every offer waits for `fedcredit participant approve` (or `reject`) by the data owner. */
        approval: z.enum(['auto', 'manual']).default('auto'),
        /** How long a manual approval may take before the offer is refused (the coordinator's offer_timeout_s must allow it). */
        approval_timeout_s: z.number().positive().default(3600),
        /** Share the statistics of this owner's features (count, mean, sd, min, max, missing rate) when a job asks. */
        share_statistics: z.boolean().default(false),
        /**
         * Caps on scoring with a vertical model this owner helped train: each request tells the guest which listed
         * enterprises this party holds, so requests per model per rolling day and ids per request are bounded.
         */
        scoring: z
          .object({
            max_requests_per_model_per_day: z.number().int().positive().default(100),
            max_ids_per_request: z.number().int().positive().default(100_000),
          })
          .strict()
          .default({ max_requests_per_model_per_day: 100, max_ids_per_request: 100_000 }),
      })
      .strict()
      .default({
        job_kinds: ['horizontal', 'vertical-lr'],
        submitters: ['*'],
        max_rounds: 1000,
        allow_plaintext: false,
        min_rows: 1,
        min_node_rows: 20,
        min_vertical_hosts: 1,
        approval: 'auto',
        approval_timeout_s: 3600,
        share_statistics: false,
        scoring: { max_requests_per_model_per_day: 100, max_ids_per_request: 100_000 },
      }),
  })
  .strict()
  .superRefine((p, ctx) => {
    const declared = new Set(p.data.features.map((f) => f.name));
    for (const [i, c] of (p.consent.columns ?? []).entries()) {
      if (!declared.has(c)) ctx.addIssue({ code: 'custom', path: ['consent', 'columns', i], message: `${c} is not a feature declared in data.features` });
    }
  });
export type ParticipantConfig = z.infer<typeof ParticipantConfig>;

/**
 * A horizontal job's encryption. Parameters default by scheme: `ckks` (one key, held by the lead and sealed to the
 * others) DEFAULT_CKKS_PARAMS; `ckks-threshold` (every participant holds a share of the key, no one the key)
 * THRESHOLD_CKKS_PARAMS, whose scale 2^80 leaves room for the decryption's noise flooding (docs/threshold-ckks.md).
 */
export const EncryptionSpec = z
  .object({
    scheme: z.enum(['ckks', 'ckks-threshold', 'plaintext']).default('ckks'),
    poly_modulus_degree: z.number().int().optional(),
    coeff_modulus_bits: z.array(z.number().int().min(20).max(60)).optional(),
    scale_bits: z.number().int().min(20).max(100).optional(),
    /**
     * ckks-threshold only: t, how many participants' decryption shares open a sum (t-of-n by Shamir re-sharing of the
     * key shares), so that a job outlives participants lost while at least t remain. Default: every participant
     * (N-of-N). At least minimumThreshold(n) (checked with the participants, below).
     */
    threshold: z.number().int().min(1).optional(),
    /** ckks-threshold only: restarts of the key ceremony after a lost participant (ceremonyRestarts, as a vertical job's). */
    ceremony_restarts: z.number().int().min(0).max(10).optional(),
  })
  .strict()
  .superRefine((e, ctx) => {
    if (e.ceremony_restarts !== undefined && e.scheme !== 'ckks-threshold') {
      ctx.addIssue({
        code: 'custom',
        path: ['ceremony_restarts'],
        message: `applies to encryption.scheme ckks-threshold only (this job uses ${e.scheme}, whose keys the lead participant makes alone): remove it, or set the scheme to ckks-threshold`,
      });
    }
    if (e.scheme !== 'ckks-threshold' && e.scale_bits !== undefined && e.scale_bits > 59) {
      ctx.addIssue({
        code: 'custom',
        path: ['scale_bits'],
        message: `scale_bits ${e.scale_bits} is above 59, which only scheme ckks-threshold uses (its flooded decryption needs the room); use at most 59`,
      });
    }
  })
  .transform((e) => {
    const d = e.scheme === 'ckks-threshold' ? THRESHOLD_CKKS_PARAMS : DEFAULT_CKKS_PARAMS;
    return {
      scheme: e.scheme,
      poly_modulus_degree: e.poly_modulus_degree ?? d.polyModulusDegree,
      coeff_modulus_bits: e.coeff_modulus_bits ?? d.coeffModulusBits,
      scale_bits: e.scale_bits ?? d.scaleBits,
      ...(e.threshold !== undefined ? { threshold: e.threshold } : {}),
      ...(e.ceremony_restarts !== undefined ? { ceremony_restarts: e.ceremony_restarts } : {}),
    };
  });

/**
 * The smallest t a t-of-n collective key may use among n participants: ⌈(n + 2) / 2⌉. Why: a participant decrypts
 * sums of one contributor set per round and purpose, and two quorums of t among n share at least 2t − n parties, so
 * a coordinator that asks a round again over a smaller set (claiming a dropout) gets the second sum opened, and with
 * the first the update of whoever was left out, only with 2t − n colluding participants. At this floor 2t − n ≥ 2: the
 * coordinator with any one participant cannot (docs/threshold-ckks.md, "Which coalitions learn what").
 */
export function minimumThreshold(participants: number): number {
  return Math.min(participants, Math.ceil((participants + 2) / 2));
}

/** How many participants' decryption shares open a sum of a ckks-threshold job: encryption.threshold, or all. */
export function decryptionThreshold(job: { participants: readonly string[]; encryption: { threshold?: number } }): number {
  return job.encryption.threshold ?? job.participants.length;
}

/**
 * The fewest contributors of a training or evaluation sum: training.min_participants, by default every participant,
 * or under a t-of-n collective key encryption.threshold (every participant under an N-of-N one).
 */
export function roundMinimum(job: { participants: readonly string[]; encryption: { scheme: string; threshold?: number }; training: { min_participants?: number } }): number {
  if (job.encryption.scheme !== 'ckks-threshold') return job.training.min_participants ?? job.participants.length;
  const t = decryptionThreshold(job);
  return t === job.participants.length ? t : (job.training.min_participants ?? t);
}

export const TrainingSpec = z
  .object({
    rounds: z.number().int().positive().max(10_000),
    local_epochs: z.number().int().positive().default(1),
    batch_size: z.number().int().positive().default(64),
    learning_rate: z.number().positive().default(0.05),
    optimizer: z.enum(['sgd', 'adam']).default('sgd'),
    /** FedProx proximal term; 0 is FedAvg. */
    fedprox_mu: z.number().min(0).default(0),
    /** Fewest participants whose updates make a round. Defaults to all named participants. */
    min_participants: z.number().int().positive().optional(),
    round_timeout_s: z.number().positive().default(300),
    max_round_retries: z.number().int().min(0).default(2),
    seed: z.number().int().min(0).default(42),
    validation_fraction: z.number().min(0).max(0.5).default(0.2),
    standardize: z.boolean().default(true),
    /**
     * Share of rows clipped at each tail before standardising: every feature the model reads as a number (not as WOE)
     * is winsorised at the federation-wide `winsorize` and 1 − `winsorize` quantiles. 0 turns it off.
     */
    winsorize: z.number().min(0).max(0.1).default(0.005),
    /**
     * Which round's global model the job publishes: `best_validation_auc` (the round whose model has the highest
     * validation AUC over the participants' validation rows, src/fl/fedavg.ts selectRound) or `last_round`.
     */
    model_selection: z.enum(['best_validation_auc', 'last_round']).default('best_validation_auc'),
  })
  .strict();

/** The shape the default rate must take across a numeric feature's bins, lowest values first (src/credit/binning.ts):
 * `auto` is ascending or descending, whichever keeps more information value. */
export const MonotonicTrend = z.enum(['auto', 'ascending', 'descending', 'peak', 'valley', 'none']);

/** What an enterprise's value counts as where its party does not hold it at scoring: `neutral` (WOE 0, the points of
 * an average enterprise), `missing` (the missing-value bin, as before 0.x), or a WOE value of its own. */
const NotHeld = z.union([z.literal('neutral'), z.literal('missing'), z.number()]);

/** Binning options of one feature, overriding the job-wide ones (`binning.features.<name>`). */
export const FeatureBinningSpec = z
  .object({
    /** Must agree with the owner's data schema when given; `category` is checked here, before any data is read. */
    type: z.enum(['number', 'category']).optional(),
    monotonic: MonotonicTrend.optional(),
    max_bins: z.number().int().min(1).max(32).optional(),
    min_bin_share: z.number().min(0).max(0.5).optional(),
    /** Codes that mean something other than an amount (e.g. -1, 96, 98, 999): each its own bin, never merged. */
    special_values: z.array(z.number()).optional(),
    /** Categories: a level held by a smaller share of the training rows joins the group of rare levels. */
    rare_share: z.number().min(0).max(0.5).optional(),
    /** Categories: a level not seen in training, at scoring: `neutral` (WOE 0), `reject` (an error), or a level seen
     * in training whose bin it takes. */
    unseen: z.string().min(1).optional(),
    /** Categories in horizontal jobs: every level the participants' rows may hold, in the order they are counted.
     * Declared in the job so each participant counts its rows per level without revealing which levels it holds. */
    levels: z.array(z.string().min(1)).min(1).optional(),
    not_held: NotHeld.optional(),
  })
  .strict();
export type FeatureBinningSpec = z.infer<typeof FeatureBinningSpec>;

/**
 * Binning of every feature on the training rows, with WOE and IV (docs/credit-toolkit.md): per party on the aligned
 * rows in vertical jobs, from secure histograms over all participants in horizontal ones.
 */
export const BinningSpec = z
  .object({
    /** `optimal`: fine quantile bins merged by `merge` under the constraints down to max_bins; `quantile`: max_bins
     * quantile bins as they are. */
    method: z.enum(['optimal', 'quantile']).default('optimal'),
    max_bins: z.number().int().min(2).max(32).default(8),
    /** optimal only: quantile bins before merging (a value held by many rows gets its own). */
    fine_bins: z.number().int().min(2).max(100).default(20),
    /** `iv`: the partition of greatest information value under the constraints (exact); `chi2`: ChiMerge (greedy). */
    merge: z.enum(['iv', 'chi2']).default('iv'),
    /** optimal only: the default-rate trend the final bins must follow. */
    monotonic: MonotonicTrend.default('auto'),
    /** optimal only: the smallest share of the training rows a final bin may hold. 2% keeps a delinquency flag that
     * 5% of the rows carry, which 5% would merge away. */
    min_bin_share: z.number().min(0).max(0.5).default(0.02),
    /** Categories: levels held by fewer rows than this share are grouped together. */
    rare_share: z.number().min(0).max(0.5).default(0.01),
    /** Categories: treatment of a level unseen in training (see FeatureBinningSpec.unseen). */
    unseen: z.string().min(1).default('neutral'),
    /** Scoring: an enterprise a party does not hold (see NotHeld). */
    not_held: NotHeld.default('neutral'),
    /** Features with a lower information value are left out of the model (0 keeps every feature). */
    iv_threshold: z.number().min(0).default(0.02),
    /** The report calls a feature with at least this IV "very strong"; only at leakage_iv does it ask to check for leakage. */
    caution_iv: z.number().positive().default(0.5),
    leakage_iv: z.number().positive().default(1.0),
    /** Train on each feature's WOE instead of its standardised value (needed for a scorecard). */
    woe_transform: z.boolean().default(true),
    /** Options of single features, by feature name. */
    features: z.record(z.string(), FeatureBinningSpec).default({}),
  })
  .strict()
  .superRefine((b, ctx) => {
    for (const [name, f] of Object.entries(b.features)) {
      if (f.type !== 'category') continue;
      if (f.monotonic !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['features', name, 'monotonic'],
          message: `${name} is a category: its levels have no order, so they are grouped by default rate; remove binning.features.${name}.monotonic`,
        });
      }
      if (f.special_values !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['features', name, 'special_values'],
          message: `${name} is a category: every level already gets its own WOE; remove binning.features.${name}.special_values (a code such as 98 is just a level)`,
        });
      }
    }
    for (const [name, f] of Object.entries(b.features)) {
      if (f.type !== 'category' && (f.rare_share !== undefined || f.unseen !== undefined || f.levels !== undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: ['features', name],
          message: `rare_share, unseen and levels apply to categories only: declare binning.features.${name}.type: category (and type: category in the owner's data.features), or remove them`,
        });
      }
      if (!f.levels) continue;
      const twice = f.levels.find((l, i) => f.levels!.indexOf(l) !== i);
      if (twice !== undefined)
        ctx.addIssue({ code: 'custom', path: ['features', name, 'levels'], message: `level ${JSON.stringify(twice)} is listed twice in binning.features.${name}.levels; list each level once` });
      const unseen = f.unseen ?? b.unseen;
      if (unseen !== 'neutral' && unseen !== 'reject' && !f.levels.includes(unseen)) {
        ctx.addIssue({
          code: 'custom',
          path: ['features', name, 'unseen'],
          message: `unseen levels of ${name} are to take the bin of ${JSON.stringify(unseen)}, which binning.features.${name}.levels does not list; name a listed level, neutral or reject`,
        });
      }
    }
    if (!(b.caution_iv <= b.leakage_iv)) ctx.addIssue({ code: 'custom', path: ['caution_iv'], message: `caution_iv (${b.caution_iv}) must not exceed leakage_iv (${b.leakage_iv})` });
  });
export type BinningSpec = z.infer<typeof BinningSpec>;

/** Points scaling: `base_score` points at odds of `base_odds`:1 (good:bad), `pdo` more points double the odds. */
export const ScorecardSpec = z
  .object({
    base_score: z.number().default(600),
    base_odds: z.number().positive().default(50),
    pdo: z.number().positive().default(20),
    /** Points are rounded to this many decimals; the score is the sum of the rounded points. At most 6: hosts'
     * points travel in masked shares at a resolution of 2^-24. */
    decimals: z.number().int().min(0).max(6, "at most 6 (hosts' points travel at a resolution of 2^-24)").default(2),
    /** Reason codes per scored enterprise: the features that cost it the most points. */
    reason_codes: z.number().int().min(0).max(10).default(3),
  })
  .strict();

/** What a job reports on its held-out or validation rows. */
export const EvaluationSpec = z
  .object({
    /** Probability of default from which an application is declined, for the confusion table. */
    decline_cutoff: z.number().gt(0).lt(1).default(0.2),
  })
  .strict();

export const HorizontalJobSpec = z
  .object({
    name: z.string().min(1).max(100),
    kind: z.literal('horizontal'),
    purpose: z.string().min(1, 'state the purpose of the job: it is shown to every data owner and kept in the record'),
    participants: z.array(orgName).min(1, 'name at least one participant'),
    /** Feature columns to use, in order; default: every feature the participants declare (they must agree). */
    features: z.array(z.string()).optional(),
    model: ModelSpec,
    training: TrainingSpec,
    encryption: EncryptionSpec.default({
      scheme: 'ckks',
      poly_modulus_degree: DEFAULT_CKKS_PARAMS.polyModulusDegree,
      coeff_modulus_bits: DEFAULT_CKKS_PARAMS.coeffModulusBits,
      scale_bits: DEFAULT_CKKS_PARAMS.scaleBits,
    }),
    /** Publish count, mean, sd and missing rate of every feature over all participants' training rows (secure sum). */
    statistics: z.boolean().default(false),
    /** Bin every feature from secure histograms, select by IV, and (woe_transform) train on WOE. */
    binning: BinningSpec.optional(),
    /** Turn the trained logistic model on WOE into a points scorecard (JSON and PMML in the model artifact). */
    scorecard: ScorecardSpec.optional(),
    /** Figures of the final model on the validation rows, from a secure histogram of predicted PD. */
    evaluation: EvaluationSpec.default({ decline_cutoff: 0.2 }),
  })
  .strict()
  .superRefine((job, ctx) => {
    if (new Set(job.participants).size !== job.participants.length) ctx.addIssue({ code: 'custom', path: ['participants'], message: 'a participant is named twice' });
    const min = job.training.min_participants;
    if (min !== undefined && min > job.participants.length)
      ctx.addIssue({ code: 'custom', path: ['training', 'min_participants'], message: `is ${min} but only ${job.participants.length} participants are named` });
    const n = job.participants.length;
    const t = job.encryption.threshold;
    if (t !== undefined && job.encryption.scheme !== 'ckks-threshold') {
      ctx.addIssue({
        code: 'custom',
        path: ['encryption', 'threshold'],
        message: `applies to encryption.scheme ckks-threshold only (this job uses ${job.encryption.scheme}): remove it, or set the scheme to ckks-threshold`,
      });
    } else if (t !== undefined && t > n) {
      ctx.addIssue({ code: 'custom', path: ['encryption', 'threshold'], message: `is ${t} but only ${n} participants are named: use at most ${n}` });
    } else if (t !== undefined && t < minimumThreshold(n)) {
      ctx.addIssue({
        code: 'custom',
        path: ['encryption', 'threshold'],
        message: `is ${t}, below the safe floor ${minimumThreshold(n)} for ${n} participants (⌈(n + 2) / 2⌉): with t shares of ${n} opening a sum, a coordinator with ${Math.max(0, 2 * t - n)} colluding participant(s) could open two attempts of a round over different sets and read the update of the participant left out. Use encryption.threshold ${minimumThreshold(n)} or more (or remove it: every participant)`,
      });
    }
    if (min !== undefined && min < n && job.encryption.scheme === 'ckks-threshold') {
      const openWith = t ?? n;
      if (openWith === n) {
        ctx.addIssue({
          code: 'custom',
          path: ['training', 'min_participants'],
          message: `is ${min}, but under encryption.scheme ckks-threshold without encryption.threshold every sum opens only with every participant's key share, so every participant must contribute to every round: remove min_participants, set encryption.threshold (t-of-n) to let rounds go on without a lost participant, or use scheme ckks`,
        });
      } else if (min < openWith) {
        ctx.addIssue({
          code: 'custom',
          path: ['training', 'min_participants'],
          message: `is ${min}, below encryption.threshold ${openWith}: a sum over fewer than t contributors cannot be opened. Remove min_participants (it defaults to encryption.threshold) or set it to at least ${openWith}`,
        });
      }
    }
    if (job.scorecard && !job.binning) {
      ctx.addIssue({ code: 'custom', path: ['scorecard'], message: 'a scorecard gives points per bin: add a `binning:` section (with woe_transform: true, the default)' });
    } else if (job.scorecard && !job.binning?.woe_transform) {
      ctx.addIssue({ code: 'custom', path: ['binning', 'woe_transform'], message: 'a scorecard needs the model trained on WOE: set binning.woe_transform to true (or drop the scorecard section)' });
    }
    if (job.scorecard && job.model.type !== 'logistic') {
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'type'],
        message: `a scorecard needs model.type: logistic (points are coefficient × WOE per feature; a ${job.model.type} has no such coefficients), or drop the scorecard section`,
      });
    }
  });
export type HorizontalJobSpec = z.infer<typeof HorizontalJobSpec>;

/** Records per mini-batch one ciphertext holds: N/2 slots of the single-key ring (N = 8192) and of the collective one. */
const MAX_SINGLE_KEY_BATCH = 4096;
const MAX_THRESHOLD_BATCH = 8192;

export const VerticalTrainingSpec = z
  .object({
    epochs: z.number().int().positive().max(1000).default(30),
    /** Records per mini-batch, at most one CKKS ciphertext's slots: 4,096 (N = 8192), or 8,192 under ckks-threshold
     * (N = 16384). Default: that slot count (VerticalJobSpec fills it in from the encryption section). */
    batch_size: z.number().int().positive().max(MAX_THRESHOLD_BATCH, `at most ${MAX_THRESHOLD_BATCH} (the CKKS slot count under ckks-threshold; 4096 under ckks)`).optional(),
    learning_rate: z.number().positive().default(0.05),
    optimizer: z.enum(['sgd', 'adam']).default('adam'),
    /** Learning rate at epoch e is learning_rate / (1 + lr_decay * e). */
    lr_decay: z.number().min(0).default(0),
    l2: z.number().min(0).default(0.001),
    /** `balanced` weighs each class by n / (2 n_class): it keeps the Taylor-approximated model close to logistic regression. */
    class_weight: z.enum(['balanced', 'none']).default('balanced'),
    /** Stop after this many epochs without a better validation AUC (0: never stop early). */
    patience: z.number().int().min(0).default(5),
    validation_fraction: z.number().min(0.01).max(0.5).default(0.1),
    /** Held-out enterprises on which the final model is evaluated (never trained or validated on). */
    test_fraction: z.number().min(0).max(0.5).default(0.2),
    seed: z.number().int().min(0).default(42),
    /** Each party standardises its own features on its training rows and clips them to +-clip (0: no clipping). */
    clip: z.number().min(0).default(5),
    /** Before standardising, each party clips a feature it does not read as WOE to its own training rows'
     * `winsorize` and 1 − `winsorize` quantiles. 0 turns it off. */
    winsorize: z.number().min(0).max(0.1).default(0.005),
    step_timeout_s: z.number().positive().default(300),
    /** How long a job waits, paused, for a party that left to come back before it fails. */
    grace_period_s: z.number().min(0).default(120),
  })
  .strict();

/** Figures per group of a categorical column one party holds (its data.group_columns). */
export const FairnessSpec = z
  .object({
    party: orgName,
    column: z.string().min(1),
    /** A gap (largest minus smallest over the groups) of default rate, approval rate, AUC or KS above this is flagged. */
    max_gap: z.number().positive().default(0.1),
  })
  .strict();

/** How a vertical job aligns its parties' enterprises (the PSI step). */
const AlignmentSpec = z
  .object({
    /** `uscc`: 18-character unified social credit codes, check digit verified; `any`: opaque strings. */
    id_format: z.enum(['uscc', 'any']).default('uscc'),
    /** Fewest enterprises all parties must share for the job to go on. */
    min_intersection: z.number().int().positive().default(100),
  })
  .strict()
  .default({ id_format: 'uscc', min_intersection: 100 });

/**
 * The trees of a vertical-boost job (docs/protocol-boost.md): what the guest's tree grower uses. The defaults serve
 * credit data of tens of thousands of rows: shallow trees, a slow learning rate, early stopping on validation AUC.
 */
export const BoostingSpec = z
  .object({
    /** Most trees to grow (early stopping may keep fewer). */
    trees: z.number().int().min(1).max(1000).default(200),
    /** Levels of splits: a tree has at most 2^depth leaves. */
    depth: z.number().int().min(1).max(8).default(4),
    learning_rate: z.number().gt(0).max(1).default(0.1),
    /** L2 penalty on leaf weights. */
    lambda: z.number().min(0).default(1),
    /** Smallest sum of hessians a child may hold (a child of fewer rows is not made: it bounds what a split reveals). */
    min_child_weight: z.number().min(0).default(5),
    /** Smallest loss reduction a split must bring. */
    min_gain: z.number().min(0).default(0),
    /** Share of training rows each tree is grown on (1: all), drawn with `seed`. */
    subsample: z.number().gt(0).max(1).default(1),
    /** Gradient-based one-side sampling instead of `subsample`: each tree keeps the `top_rate` share of rows with the
     * largest gradients and draws `other_rate` of the rows from the rest, weighed up to stand for them. */
    goss: z
      .object({ top_rate: z.number().gt(0).lt(1).default(0.2), other_rate: z.number().gt(0).lt(1).default(0.1) })
      .strict()
      .refine((g) => g.top_rate + g.other_rate <= 1, { message: 'top_rate + other_rate must be at most 1 (they are shares of the training rows)' })
      .optional(),
    seed: z.number().int().min(0).default(1),
    /** Stop when the validation AUC has not improved for this many trees (0: grow every tree); the best count is kept. */
    early_stopping_patience: z.number().int().min(0).default(20),
    /** The first this many trees split on the guest's features only (the hosts are asked nothing for them). */
    guest_only_trees: z.number().int().min(0).default(0),
    /** The direction the score must follow in a numeric feature, by feature name (any party's). */
    monotone: z.record(z.string(), z.enum(['increasing', 'decreasing'])).default({}),
    /** Reason codes per enterprise `fedcredit score` gives: the features (named with their party) that raised its PD most. */
    reason_codes: z.number().int().min(0).max(10).default(3),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.goss && b.subsample < 1) ctx.addIssue({ code: 'custom', path: ['goss'], message: `goss chooses each tree's rows itself; remove subsample (${b.subsample}) or goss` });
    if (b.guest_only_trees > b.trees) ctx.addIssue({ code: 'custom', path: ['guest_only_trees'], message: `guest_only_trees (${b.guest_only_trees}) exceeds trees (${b.trees})` });
  });
export type BoostingSpec = z.infer<typeof BoostingSpec>;

/** What the two vertical training kinds (vertical-lr, vertical-boost) name alike: the job, its parties and their columns. */
const verticalTrainingJob = <K extends 'vertical-lr' | 'vertical-boost'>(kind: K) => ({
  name: z.string().min(1).max(100),
  kind: z.literal(kind),
  purpose: z.string().min(1, 'state the purpose of the job: it is shown to every data owner and kept in the record'),
  /** The party holding the labels (the bank). */
  guest: orgName,
  /** Parties holding extra features of the same enterprises. */
  hosts: z.array(orgName).min(1, 'name at least one host').max(10, 'at most 10 hosts'),
  /** Columns each party contributes, by organisation; default: every feature it declares. */
  features: z.record(z.string(), z.array(z.string()).min(1)).optional(),
  alignment: AlignmentSpec,
});

/** Each party named once; columns and a fairness group only of the job's parties. */
function checkVerticalParties(job: { guest: string; hosts: string[]; features?: Record<string, string[]>; fairness?: { party: string } }, ctx: z.RefinementCtx): void {
  const parties = [job.guest, ...job.hosts];
  if (new Set(parties).size !== parties.length) ctx.addIssue({ code: 'custom', path: ['hosts'], message: 'a party is named twice (the guest cannot also be a host)' });
  for (const org of Object.keys(job.features ?? {})) {
    if (!parties.includes(org)) ctx.addIssue({ code: 'custom', path: ['features', org], message: `${org} is neither the guest nor a host` });
  }
  if (job.fairness && !parties.includes(job.fairness.party)) {
    ctx.addIssue({ code: 'custom', path: ['fairness', 'party'], message: `${job.fairness.party} is neither the guest nor a host` });
  }
}

export const VerticalJobSpec = z
  .object({
    ...verticalTrainingJob('vertical-lr'),
    training: VerticalTrainingSpec.default(VerticalTrainingSpec.parse({})),
    /**
     * `ckks`: the gradient key is the arbiter's (the coordinator's); `ckks-threshold`: the arbiter, the guest and
     * every host each hold a share of a collective key and nobody the key (docs/threshold-ckks.md, N = 16384).
     */
    encryption: z
      .object({
        scheme: z.enum(['ckks', 'ckks-threshold', 'plaintext']).default('ckks'),
        /**
         * ckks-threshold: how many times the coordinator may restart the key ceremony from the beginning after a party
         * is lost during it (before anything is encrypted under the key); every party refuses an attempt beyond it.
         * Default DEFAULT_CEREMONY_RESTARTS (ceremonyRestarts).
         */
        ceremony_restarts: z.number().int().min(0).max(10).optional(),
      })
      .strict()
      .default({ scheme: 'ckks' }),
    evaluation: EvaluationSpec.default({ decline_cutoff: 0.2 }),
    /** Ask each party to share count, mean, sd, min, max and missing rate of its features; only parties whose
     * consent.share_statistics allows it do, the others keep them in their job folder. */
    statistics: z.boolean().default(false),
    binning: BinningSpec.optional(),
    scorecard: ScorecardSpec.optional(),
    fairness: FairnessSpec.optional(),
  })
  .strict()
  .superRefine((job, ctx) => {
    checkVerticalParties(job, ctx);
    if (job.encryption.scheme !== 'ckks-threshold' && (job.training.batch_size ?? 0) > MAX_SINGLE_KEY_BATCH) {
      ctx.addIssue({
        code: 'custom',
        path: ['training', 'batch_size'],
        message: `at most ${MAX_SINGLE_KEY_BATCH} under encryption.scheme ${job.encryption.scheme} (a ciphertext of N = 8192 holds 4,096 records); up to ${MAX_THRESHOLD_BATCH} only under ckks-threshold (N = 16384)`,
      });
    }
    if (job.encryption.ceremony_restarts !== undefined && job.encryption.scheme !== 'ckks-threshold') {
      ctx.addIssue({
        code: 'custom',
        path: ['encryption', 'ceremony_restarts'],
        message: `applies to encryption.scheme ckks-threshold only (this job uses ${job.encryption.scheme}, whose keys the arbiter makes alone): remove it, or set the scheme to ckks-threshold`,
      });
    }
    if (job.scorecard && !job.binning?.woe_transform) {
      ctx.addIssue({ code: 'custom', path: ['scorecard'], message: 'a scorecard needs binning with woe_transform: true (add a `binning:` section)' });
    }
  })
  // A batch fills one ciphertext by default: the collective key's larger ring takes twice the records for about the
  // cost of a single-key batch (BENCHMARKS.md, "Threshold CKKS in vertical jobs").
  .transform((job) => ({ ...job, training: { ...job.training, batch_size: job.training.batch_size ?? (job.encryption.scheme === 'ckks-threshold' ? MAX_THRESHOLD_BATCH : MAX_SINGLE_KEY_BATCH) } }));
export type VerticalJobSpec = z.infer<typeof VerticalJobSpec>;

/** Restarts of a collective key's ceremony after a lost party, when encryption.ceremony_restarts is not set. */
export const DEFAULT_CEREMONY_RESTARTS = 2;

/** How many times a ckks-threshold job's key ceremony may be restarted (encryption.ceremony_restarts). */
export function ceremonyRestarts(job: { encryption: { ceremony_restarts?: number } }): number {
  return job.encryption.ceremony_restarts ?? DEFAULT_CEREMONY_RESTARTS;
}

/** Gradient-boosted trees on different features of the same enterprises (docs/protocol-boost.md). */
export const VerticalBoostSpec = z
  .object({
    ...verticalTrainingJob('vertical-boost'),
    /** The split of the shared enterprises (as vertical-lr's training section) and the step timing. */
    training: z
      .object({
        validation_fraction: z.number().min(0.01).max(0.5).default(0.1),
        test_fraction: z.number().min(0).max(0.5).default(0.2),
        seed: z.number().int().min(0).default(42),
        step_timeout_s: z.number().positive().default(600),
        grace_period_s: z.number().min(0).default(120),
      })
      .strict()
      .default({ validation_fraction: 0.1, test_fraction: 0.2, seed: 42, step_timeout_s: 600, grace_period_s: 120 }),
    evaluation: EvaluationSpec.default({ decline_cutoff: 0.2 }),
    /** How each party bins its features for the trees: `fine_bins` quantile bins, special values and categories. */
    binning: BinningSpec.default(BinningSpec.parse({})),
    boosting: BoostingSpec.default(BoostingSpec.parse({})),
    fairness: FairnessSpec.optional(),
  })
  .strict()
  .superRefine(checkVerticalParties);
export type VerticalBoostSpec = z.infer<typeof VerticalBoostSpec>;

/** Scoring new enterprises with a trained vertical model: each party computes its partial score on its own features. */
export const VerticalScoreSpec = z
  .object({
    name: z.string().min(1).max(100),
    kind: z.literal('vertical-score'),
    purpose: z.string().min(1, 'state the purpose of the scoring: it is shown to every data owner and kept in the record'),
    /** The vertical-lr or vertical-boost job whose model to use; every party scores with the part it kept from that job. */
    model_job: z.string().min(1),
    guest: orgName,
    hosts: z.array(orgName).min(1).max(10),
    /** A file in the guest's `<state_dir>/score-requests/` listing the enterprise ids to score (one per line). */
    ids_file: z.string().regex(/^[A-Za-z0-9._-]+$/, "a file name inside the guest's score-requests folder (no path)"),
    /** Absent: the model job's alignment.id_format (a different one is refused). */
    id_format: z.enum(['uscc', 'any']).optional(),
    step_timeout_s: z.number().positive().default(300),
    grace_period_s: z.number().min(0).default(120),
  })
  .strict();
export type VerticalScoreSpec = z.infer<typeof VerticalScoreSpec>;

export const JobSpec = z.discriminatedUnion('kind', [HorizontalJobSpec, VerticalJobSpec, VerticalBoostSpec, VerticalScoreSpec], {
  error:
    'kind must be `horizontal` (same features, different enterprises), `vertical-lr` (different features of the same enterprises), `vertical-boost` (gradient-boosted trees on them) or `vertical-score`',
});
export type JobSpec = z.infer<typeof JobSpec>;

export function ckksParamsOf(job: HorizontalJobSpec) {
  return {
    polyModulusDegree: job.encryption.poly_modulus_degree,
    coeffModulusBits: job.encryption.coeff_modulus_bits,
    scaleBits: job.encryption.scale_bits,
  };
}
