/**
 * The published model: a TensorFlow.js layers-model artifact (model.json + weights.bin, loadable by
 * tf.loadLayersModel in any TensorFlow.js runtime) plus fedcredit.json with the feature order and the
 * standardisation every party applied, so the model scores raw rows exactly as it was trained.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './tf.js';
import type { Preprocessing } from '../wire/messages.js';
import { applyPreprocessing } from './preprocess.js';
import { predict } from './network.js';

export interface ModelMetadata {
  format: 'fedcredit-model/1';
  jobId: string;
  modelType: string;
  preprocessing: Preprocessing;
  weightsSha256: string;
  rounds: number;
  participants: string[];
  createdAt: string;
}

export type ArtifactFiles = Record<string, Uint8Array>;

/** SHA-256 of the flat float32 weights: the model's identity in logs, job status and (later) the audit ledger. */
export function weightsDigest(flat: Float32Array): Uint8Array {
  return createHash('sha256').update(new Uint8Array(flat.buffer, flat.byteOffset, flat.byteLength)).digest();
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
        'fedcredit.json': Buffer.from(JSON.stringify(metadata, null, 2)),
      };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return files;
}

export async function writeArtifact(dir: string, files: ArtifactFiles): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
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
  /** Probability of default for raw (unstandardised) row-major rows in metadata.preprocessing.features order. */
  score(rawRows: Float32Array): Float32Array;
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
  const metadata = JSON.parse(need('fedcredit.json').toString('utf8')) as ModelMetadata;
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: manifest.modelTopology,
      weightSpecs: manifest.weightsManifest[0].weights,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    }),
  );
  const dim = metadata.preprocessing.features.length;
  return {
    model,
    metadata,
    score: (rawRows) => predict(tf, model, applyPreprocessing(rawRows, metadata.preprocessing), dim),
  };
}

/** Load a published model from its folder (model.json, weights.bin, fedcredit.json). */
export async function loadArtifact(tf: Tf, dir: string): Promise<LoadedModel> {
  const files: ArtifactFiles = {};
  for (const name of ['model.json', 'weights.bin', 'fedcredit.json']) files[name] = await readFile(join(dir, name));
  return modelFromFiles(tf, files);
}
