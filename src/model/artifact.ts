/**
 * The published model: a TensorFlow.js layers-model artifact (model.json + weights.bin, loadable by
 * tf.loadLayersModel in any TensorFlow.js runtime) plus fedcredit.json with the feature order and the
 * standardisation every party applied (or, for a binned job, each feature's bins and WOE), so the model scores raw
 * rows exactly as it was trained. A scorecard job adds scorecard.json and scorecard.pmml. Artifacts written before
 * binning existed (no `bins` in the preprocessing) load and score as before.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './tf.js';
import { applyPreprocessing, selectColumns, type Preprocessing } from './preprocess.js';
import { predict } from './network.js';
import { sha256 } from '../bytes.js';
import { ErrorCode, FedcreditError, errorMessage } from '../errors.js';

/** The artifact's metadata file. */
export const ARTIFACT_METADATA = 'fedcredit.json';
export const ARTIFACT_DOWNLOAD_HINT = 'pass the folder `fedcredit job model <job-id> --identity <dir> --out <folder>` wrote for a horizontal job (it holds model.json, weights.bin and fedcredit.json)';

export interface ModelMetadata {
  format: 'fedcredit-model/1';
  jobId: string;
  /** The job's name, purpose and submitter, for the model report (absent in artifacts written before they were kept). */
  name?: string;
  purpose?: string;
  submitter?: string;
  modelType: string;
  preprocessing: Preprocessing;
  weightsSha256: string;
  rounds: number;
  /** The round whose global model this is (training.model_selection; absent in artifacts of older jobs: the last). */
  selectedRound?: number;
  participants: string[];
  createdAt: string;
  /**
   * Figures of the model on the participants' validation rows, from the evaluation secure sum (absent or null: not
   * run), with the opened PD cells they come from (`pdHistogram`, src/fl/pd-histogram.ts).
   */
  evaluation?: Record<string, unknown> | null;
  /** Count, mean, sd and missing rate per feature over all training rows (`statistics: true`). */
  statistics?: Record<string, unknown>[];
  /** Binned jobs: every candidate feature's IV in its fine bins and its final bins, and the warnings of features
   * binning lost (absent in older artifacts and in jobs resumed after a coordinator restart). */
  binning?: { iv: { feature: string; type?: 'category'; iv: number; fineIv: number; chanceIv?: number; bins: number; selected: boolean }[]; warnings: string[] };
  /** Validation rows too few for their AUC to choose the published round (src/evaluation.ts validationSizeWarning). */
  validationWarning?: string;
  /** The scorecard files in the artifact (scorecard jobs). */
  scorecard?: { json: string; pmml: string; sha256: string; basePoints: number; scoreRange: [number, number] /** Reasons per scored enterprise (absent in older artifacts). */; reasonCodes?: number };
}

export type ArtifactFiles = Record<string, Uint8Array>;

/** SHA-256 of the flat float32 weights: the model's identity in logs, job status and (later) the audit ledger. */
export function weightsDigest(flat: Float32Array): Uint8Array {
  return sha256(new Uint8Array(flat.buffer, flat.byteOffset, flat.byteLength));
}

export async function modelToFiles(tf: Tf, model: TF.LayersModel, metadata: ModelMetadata): Promise<ArtifactFiles> {
  let files: ArtifactFiles = {};
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData as ArrayBuffer;
      const manifest = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: ['./weights.bin'], weights: artifacts.weightSpecs }],
      };
      files = {
        'model.json': Buffer.from(JSON.stringify(manifest)),
        'weights.bin': new Uint8Array(weightData),
        [ARTIFACT_METADATA]: Buffer.from(JSON.stringify(metadata, null, 2)),
      };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return files;
}

/**
 * A published model's files in `dir`: mode 0600 in a 0700 folder, like every other secret a node keeps (a model is
 * the data owners' joint work, and a scorecard reveals how each bin of each party's features scores).
 */
export async function writeArtifact(dir: string, files: ArtifactFiles): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  for (const [name, bytes] of Object.entries(files)) {
    await writeFile(join(dir, name), bytes, { mode: 0o600 });
    await chmod(join(dir, name), 0o600);
  }
}

/** A single-buffer form of the artifact for transfer: a JSON index of base64 files. */
export function packArtifact(files: ArtifactFiles): Uint8Array {
  const index = Object.fromEntries(Object.entries(files).map(([name, bytes]) => [name, Buffer.from(bytes).toString('base64')]));
  return Buffer.from(JSON.stringify({ format: 'fedcredit-artifact/1', files: index }));
}

export function unpackArtifact(bytes: Uint8Array): ArtifactFiles {
  const parsed = JSON.parse(Buffer.from(bytes).toString('utf8')) as { format: string; files: Record<string, string> };
  if (parsed.format !== 'fedcredit-artifact/1') throw new Error(`unknown artifact format ${parsed.format}`);
  return Object.fromEntries(Object.entries(parsed.files).map(([name, b64]) => [name, Buffer.from(b64, 'base64')]));
}

export interface LoadedModel {
  model: TF.LayersModel;
  metadata: ModelMetadata;
  /** The raw columns the model reads, in order (metadata.preprocessing.features). */
  features: string[];
  /** Probability of default for raw (unstandardised) row-major rows in metadata.preprocessing.features order; a
   * categorical feature's cells are positions in `levels[feature]` (the scored data's own level list). */
  score(rawRows: Float32Array, levels?: Readonly<Record<string, readonly string[]>>): Float32Array;
  /** The same for rows whose columns are `columns` (a superset of `features`, in any order). */
  scoreColumns(rawRows: Float32Array, columns: readonly string[], levels?: Readonly<Record<string, readonly string[]>>): Float32Array;
}

/** Load a published model from its files in memory (as downloaded from the coordinator). */
export async function modelFromFiles(tf: Tf, files: ArtifactFiles): Promise<LoadedModel> {
  const need = (name: string) => {
    const bytes = files[name];
    if (!bytes) throw new Error(`the model artifact has no ${name}`);
    return Buffer.from(bytes);
  };
  const manifest = JSON.parse(need('model.json').toString('utf8'));
  const weights = need('weights.bin');
  const metadata = JSON.parse(need(ARTIFACT_METADATA).toString('utf8')) as ModelMetadata;
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: manifest.modelTopology,
      weightSpecs: manifest.weightsManifest[0].weights,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    }),
  );
  const features = metadata.preprocessing.features;
  const dim = features.length;
  const score = (rawRows: Float32Array, levels?: Readonly<Record<string, readonly string[]>>) => predict(tf, model, applyPreprocessing(rawRows, metadata.preprocessing, levels), dim);
  return {
    model,
    metadata,
    features,
    score,
    scoreColumns: (rawRows, columns, levels) => score(selectColumns(rawRows, columns, features), levels),
  };
}

/** Load a published model from its folder (model.json, weights.bin, fedcredit.json). */
export async function loadArtifact(tf: Tf, dir: string): Promise<LoadedModel> {
  const files: ArtifactFiles = {};
  for (const name of ['model.json', 'weights.bin', ARTIFACT_METADATA]) files[name] = await readFile(join(dir, name));
  return modelFromFiles(tf, files);
}

/** A downloaded horizontal model's fedcredit.json, with the cause and the fix named if `dir` is not such a folder. */
export function readArtifactMetadata(
  dir: string,
  verticalHint = "a vertical job's report is built at its guest: `fedcredit report <job-id> --config <guest.yaml>` on the guest's machine",
): ModelMetadata {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new FedcreditError(ErrorCode.NOT_FOUND, `no folder ${dir}`, ARTIFACT_DOWNLOAD_HINT);
  const file = join(dir, ARTIFACT_METADATA);
  if (!existsSync(file)) {
    if (existsSync(join(dir, 'manifest.json'))) {
      throw new FedcreditError(ErrorCode.NOT_FOUND, `${dir} holds a vertical model's manifest, not a horizontal model artifact`, verticalHint);
    }
    throw new FedcreditError(ErrorCode.NOT_FOUND, `${dir} is not a horizontal model artifact: it has no ${ARTIFACT_METADATA}`, ARTIFACT_DOWNLOAD_HINT);
  }
  let meta: ModelMetadata;
  try {
    meta = JSON.parse(readFileSync(file, 'utf8')) as ModelMetadata;
  } catch (err) {
    throw new FedcreditError(ErrorCode.NOT_FOUND, `${file} is not valid JSON (${errorMessage(err)})`, ARTIFACT_DOWNLOAD_HINT);
  }
  if (meta?.format !== 'fedcredit-model/1') {
    throw new FedcreditError(ErrorCode.NOT_FOUND, `${file} is not a horizontal model's metadata (format ${JSON.stringify(meta?.format)}; expected "fedcredit-model/1")`, ARTIFACT_DOWNLOAD_HINT);
  }
  return meta;
}
