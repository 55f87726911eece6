import * as tf from '@tensorflow/tfjs';
import { BACKEND_REQUESTS, COMPUTE_BACKENDS, GraftError, UsageError, isBackendRequest, type BackendRequest, type ComputeBackend } from '@graft/core';
import type { ModelLogger } from './logger.ts';
import { MODEL_ERROR_CODES } from './error-codes.ts';

export { BACKEND_REQUESTS, type BackendRequest } from '@graft/core';

export interface BackendInfo {
  /** tfjs backend in use. */
  backend: ComputeBackend;
  tfjsVersion: string;
  /** Why this backend: what was requested and what failed on the way. */
  reason: string;
}

/** Kept in a variable so TypeScript does not try to resolve the optional package. */
const TFJS_NODE = '@tensorflow/tfjs-node';

/** Loads one backend and makes it the active tfjs backend; throws (with the reason) when it cannot. */
export type BackendLoader = () => Promise<void>;
export type BackendLoaders = Record<ComputeBackend, BackendLoader>;

const loaders: BackendLoaders = {
  async tensorflow() {
    try {
      await import(TFJS_NODE);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException | undefined)?.code;
      const why =
        code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
          ? `${TFJS_NODE} is not installed (it is optional: its install script downloads libtensorflow, which needs internet; run \`npm install ${TFJS_NODE}\` on a connected machine)`
          : `${TFJS_NODE} failed to load: ${error instanceof Error ? error.message : String(error)}`;
      throw new GraftError(MODEL_ERROR_CODES.backendUnavailable, why, { cause: error });
    }
    await setBackend('tensorflow');
  },
  async wasm() {
    await import('@tensorflow/tfjs-backend-wasm');
    // The emscripten glue installs process-wide handlers that rethrow every uncaught
    // error from inside its minified source, so Node prints a 10 kB line of wasm glue
    // instead of the real stack. Node's default handling is the same minus the noise.
    const events = ['uncaughtException', 'unhandledRejection'];
    const listeners = (event: string) => process.listeners(event as 'uncaughtException') as Array<(...args: unknown[]) => void>;
    const before = events.map((event) => new Set(listeners(event)));
    await setBackend('wasm');
    events.forEach((event, i) => {
      for (const listener of listeners(event)) if (!before[i]!.has(listener)) process.removeListener(event, listener);
    });
    // Without these kernels the wasm backend cannot train a conv layer at all.
    const { registerWasmTrainingKernels } = await import('@graft/wasm-kernels');
    registerWasmTrainingKernels();
  },
  async cpu() {
    await setBackend('cpu');
    // The cpu backend prints a "install tfjs-node" banner on first use; our log already
    // says which backend runs and why, and the banner would corrupt --json output.
    const cpu = tf.findBackend('cpu') as { firstUse?: boolean } | null;
    if (cpu && 'firstUse' in cpu) cpu.firstUse = false;
  },
};

async function setBackend(name: string): Promise<void> {
  let ok: boolean;
  try {
    ok = await tf.setBackend(name);
  } catch (error) {
    throw new GraftError(MODEL_ERROR_CODES.backendUnavailable, `tfjs backend '${name}' failed to initialise: ${String(error)}`, { cause: error });
  }
  if (!ok || tf.getBackend() !== name) {
    throw new GraftError(MODEL_ERROR_CODES.backendUnavailable, `tfjs backend '${name}' failed to initialise`);
  }
}

/**
 * The choice itself (DESIGN.md §5), separate from tfjs so it can be tested with any set of
 * installed backends: 'auto' takes the first of tensorflow, wasm, cpu whose loader succeeds
 * and says why; an explicit request that cannot load is an error rather than a silent
 * fallback, since the user asked for it by name.
 */
export async function chooseBackend(request: BackendRequest, load: BackendLoaders): Promise<{ backend: ComputeBackend; reason: string }> {
  const order: readonly ComputeBackend[] = request === 'auto' ? COMPUTE_BACKENDS : [request];
  const failures: string[] = [];
  for (const name of order) {
    try {
      await load[name]();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (request !== 'auto') {
        // Asked for by name (--backend, config): the user picks another, so exit 2.
        throw new UsageError(
          MODEL_ERROR_CODES.backendUnavailable,
          `backend '${name}' is not available: ${message}. Choose another with --backend ${BACKEND_REQUESTS.filter((b) => b !== name).join('|')}.`,
          { cause: error },
        );
      }
      failures.push(`${name}: ${message}`);
      continue;
    }
    const reason =
      request === 'auto'
        ? failures.length === 0
          ? `auto: ${name} is the fastest backend available`
          : `auto: chose ${name} because ${failures.join('; ')}`
        : `requested ${name}`;
    return { backend: name, reason };
  }
  // cpu is pure JS and always loads, so this only happens if tfjs itself is broken.
  throw new GraftError(MODEL_ERROR_CODES.backendUnavailable, `no tfjs backend could be loaded: ${failures.join('; ')}`);
}

const settled = new Map<BackendRequest, BackendInfo>();

/**
 * Selects the compute backend with chooseBackend and the real loaders. Idempotent: a
 * repeated request returns the first answer as long as that backend is still active.
 */
export async function initBackend(requested: BackendRequest | string, logger?: ModelLogger): Promise<BackendInfo> {
  if (!isBackendRequest(requested)) {
    throw new UsageError(
      MODEL_ERROR_CODES.backendUnknown,
      `unknown backend '${requested}'; use one of ${BACKEND_REQUESTS.map((b) => `'${b}'`).join(', ')}`,
    );
  }
  const request = requested;
  const previous = settled.get(request);
  if (previous && tf.getBackend() === previous.backend) return previous;

  const { backend, reason } = await chooseBackend(request, loaders);
  const info: BackendInfo = { backend, tfjsVersion: tf.version_core, reason };
  settled.set(request, info);
  logger?.info({ backend, tfjs: info.tfjsVersion, reason }, `compute backend: ${backend}`);
  return info;
}

/** The tfjs version in use (for manifests), without selecting a backend. */
export const tfjsVersion: string = tf.version_core;
