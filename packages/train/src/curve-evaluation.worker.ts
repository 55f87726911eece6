/**
 * Worker-thread entry of the background curve evaluation (curve-evaluation.ts): its own
 * tfjs instance on the same backend as the training thread (graft's wasm kernels
 * registered by initBackend), holding a copy of the validation set and of the weights.
 *
 * Messages are handled strictly in arrival order, so results come back in the order the
 * training loop submitted them. The computation is the training thread's own
 * (`PointScorer`), on the same backend and kernels, so the numbers are the same bits.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { VARIABLE_ORDER, assignValues, initBackend } from '@graft/model';
import type { NetworkSpec, NetworkVariables } from '@graft/model';
import { PointScorer } from './curve-evaluation.ts';
import type { WorkerReply, WorkerRequest } from './curve-evaluation.ts';

if (!parentPort) throw new Error('curve-evaluation.worker.ts runs only as a worker thread (see curve-evaluation.ts)');
const port = parentPort;

let spec: NetworkSpec | null = null;
let scorer: PointScorer | null = null;
let vars: NetworkVariables | null = null;
// Messages arrive while the backend is still loading; chaining keeps their order.
let queue: Promise<void> = Promise.resolve();

port.on('message', (message: WorkerRequest) => {
  queue = queue.then(() => handle(message)).catch((error: unknown) => {
    const reply: WorkerReply = { type: 'error', message: error instanceof Error ? error.message : String(error), stack: error instanceof Error ? error.stack : undefined };
    port.postMessage(reply);
  });
});

async function handle(message: WorkerRequest): Promise<void> {
  if (message.type === 'init') {
    const info = await initBackend(message.backend);
    if (info.backend !== message.backend) throw new Error(`worker backend is ${info.backend}, the training thread's is ${message.backend}`);
    spec = message.spec;
    scorer = new PointScorer(message.spec, message.validation, message.frozenBase);
    return;
  }
  if (!spec || !scorer) throw new Error("'evaluate' before 'init'");
  for (const name of VARIABLE_ORDER) {
    const values = message.weights[name];
    if (!values) continue;
    if (!vars) vars = {} as NetworkVariables;
    const shape = message.shapes[name]!;
    if (vars[name]) assignValues(vars[name], values);
    else {
      const initial = tf.tensor(values, shape, 'float32');
      vars[name] = tf.variable(initial, false);
      initial.dispose();
    }
  }
  if (!vars || VARIABLE_ORDER.some((name) => !vars![name])) throw new Error('the first evaluation must carry every variable');
  const { batchAccuracy, valAccuracy } = scorer.score(vars, message.batch);
  const reply: WorkerReply = { type: 'result', id: message.id, batchAccuracy, valAccuracy };
  port.postMessage(reply);
}
