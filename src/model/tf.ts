/**
 * TensorFlow.js loading. `@tensorflow/tfjs-node` (native libtensorflow) is an optional accelerator: used when the
 * user has installed it, otherwise the pure-npm `@tensorflow/tfjs` with its CPU backend, which installs offline.
 * Every caller gets the same namespace from `loadTf()` and the log says which backend runs.
 */
import type * as TF from '@tensorflow/tfjs';

export type Tf = typeof TF;

let loaded: Promise<{ tf: Tf; backend: string }> | undefined;

async function load(): Promise<{ tf: Tf; backend: string }> {
  if (process.env.FEDCREDIT_TF_BACKEND !== 'cpu') {
    try {
      const native = (await import(/* optional */ '@tensorflow/tfjs-node' as string)) as Tf;
      await native.ready();
      return { tf: native, backend: `tensorflow (native, ${native.getBackend()})` };
    } catch {
      // not installed: fall through to the pure-npm backend
    }
  }
  const tf = (await import('@tensorflow/tfjs')) as Tf;
  await tf.setBackend('cpu');
  await tf.ready();
  // The CPU backend prints a banner recommending tfjs-node on first use; the log line below says the same once.
  (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
  return { tf, backend: 'cpu (pure JavaScript; `npm install @tensorflow/tfjs-node` to accelerate)' };
}

export function loadTf(): Promise<{ tf: Tf; backend: string }> {
  loaded ??= load();
  return loaded;
}
