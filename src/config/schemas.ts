/**
 * The three YAML configs a federation runs on. docs/configuration.md documents every field; the defaults here are
 * the documented ones.
 */
import { z } from 'zod';
import { DatasetSpec } from '../data/schema.js';
import { ModelSpec } from '../model/spec.js';
import { DEFAULT_CKKS_PARAMS } from '../he/ckks.js';

const address = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'an address is host:port, e.g. 127.0.0.1:7700 (port 0 picks a free one)');
const orgName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'an organisation name is lower-case letters, digits and dashes, e.g. `tax-bureau`');

export const CoordinatorConfig = z
  .object({
    listen: address.default('127.0.0.1:7700'),
    /** Name that signs the coordinator's ledger entries. */
    name: orgName.default('coordinator'),
    state_dir: z.string().default('./fedcredit-state/coordinator'),
    /** The audit ledger folder (entries.log, blobs/, signers.json), relative to state_dir. */
    ledger_dir: z.string().default('ledger'),
    log_level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    /** Seconds a participant has to answer a job offer. */
    offer_timeout_s: z.number().positive().default(60),
  })
  .strict();
export type CoordinatorConfig = z.infer<typeof CoordinatorConfig>;

export const ParticipantConfig = z
  .object({
    organisation: orgName,
    coordinator: address,
    /** Where the node keeps its own record: what it sent and received, and the coordinator's signed receipts.
     * Relative to the config file; default fedcredit-state/<organisation>. */
    state_dir: z.string().optional(),
    log_level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    data: DatasetSpec,
    consent: z
      .object({
        /** Job kinds this data owner agrees to take part in. */
        job_kinds: z.array(z.enum(['horizontal'])).min(1).default(['horizontal']),
        /** Organisations allowed to submit jobs that use this data; `*` allows any. */
        submitters: z.array(z.string()).min(1).default(['*']),
        max_rounds: z.number().int().positive().default(1000),
        /** Refuse plaintext-mode jobs unless set: updates would cross the wire unencrypted. */
        allow_plaintext: z.boolean().default(false),
      })
      .strict()
      .default({ job_kinds: ['horizontal'], submitters: ['*'], max_rounds: 1000, allow_plaintext: false }),
  })
  .strict();
export type ParticipantConfig = z.infer<typeof ParticipantConfig>;

export const EncryptionSpec = z
  .object({
    scheme: z.enum(['ckks', 'plaintext']).default('ckks'),
    poly_modulus_degree: z.number().int().default(DEFAULT_CKKS_PARAMS.polyModulusDegree),
    coeff_modulus_bits: z.array(z.number().int().min(20).max(60)).default(DEFAULT_CKKS_PARAMS.coeffModulusBits),
    scale_bits: z.number().int().min(20).max(59).default(DEFAULT_CKKS_PARAMS.scaleBits),
  })
  .strict();

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
  })
  .strict();

export const JobSpec = z
  .object({
    name: z.string().min(1).max(100),
    kind: z.enum(['horizontal'], { error: 'kind must be `horizontal` (vertical jobs come with the vertical protocol)' }),
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
  })
  .strict()
  .superRefine((job, ctx) => {
    if (new Set(job.participants).size !== job.participants.length) ctx.addIssue({ code: 'custom', path: ['participants'], message: 'a participant is named twice' });
    const min = job.training.min_participants;
    if (min !== undefined && min > job.participants.length)
      ctx.addIssue({ code: 'custom', path: ['training', 'min_participants'], message: `is ${min} but only ${job.participants.length} participants are named` });
  });
export type JobSpec = z.infer<typeof JobSpec>;

export function ckksParamsOf(job: JobSpec) {
  return {
    polyModulusDegree: job.encryption.poly_modulus_degree,
    coeffModulusBits: job.encryption.coeff_modulus_bits,
    scaleBits: job.encryption.scale_bits,
  };
}
