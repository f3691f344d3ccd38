/**
 * A dependency-free trainer: logistic regression by mini-batch SGD on synthetic data,
 * reporting to runplane with the TypeScript learner. For machines without Python.
 *
 *   node --import tsx examples/ts-trainer/train.ts --lr 0.1 --epochs 50
 *
 * With RUNPLANE_CONTROLLER_URL, RUNPLANE_RUN_ID and RUNPLANE_RUN_TOKEN set it heartbeats,
 * reports loss / val_loss / val_accuracy per epoch and obeys tune (learning_rate),
 * pause / resume and terminate (final_checkpoint writes the weights as JSON). Without them
 * it just trains.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Learner } from '../../src/client/index.js';

const { values: args } = parseArgs({
  options: {
    lr: { type: 'string', default: '0.1' },
    epochs: { type: 'string', default: '50' },
    features: { type: 'string', default: '20' },
    samples: { type: 'string', default: '4000' },
    'batch-size': { type: 'string', default: '64' },
    'checkpoint-dir': { type: 'string', default: 'checkpoints' },
    'step-delay-ms': { type: 'string', default: '0' },
    seed: { type: 'string', default: '1' },
  },
});
const num = (k: keyof typeof args): number => {
  const n = Number(args[k]);
  if (!Number.isFinite(n)) throw new Error(`--${k} must be a number`);
  return n;
};

/** mulberry32: a small seeded generator, so a run is reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = rng(num('seed'));
const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const dot = (w: number[], x: number[]) => w.reduce((s, wi, i) => s + wi * (x[i] ?? 0), 0);

// Labels from a hidden linear rule plus noise: separable enough to learn, not trivially.
const d = num('features');
const truth = Array.from({ length: d }, gauss);
const xs = Array.from({ length: num('samples') }, () => Array.from({ length: d }, gauss));
const ys = xs.map((x) => (sigmoid(2 * dot(truth, x) + 0.5 * gauss()) > 0.5 ? 1 : 0));
const nVal = Math.floor(xs.length / 5);
const [xVal, yVal, xTrain, yTrain] = [xs.slice(0, nVal), ys.slice(0, nVal), xs.slice(nVal), ys.slice(nVal)];

function evaluate(w: number[], b: number, x: number[][], y: number[]) {
  let loss = 0;
  let correct = 0;
  x.forEach((xi, i) => {
    const p = Math.min(Math.max(sigmoid(dot(w, xi) + b), 1e-12), 1 - 1e-12);
    const yi = y[i] ?? 0;
    loss -= yi * Math.log(p) + (1 - yi) * Math.log(1 - p);
    if ((p > 0.5 ? 1 : 0) === yi) correct++;
  });
  return { loss: loss / x.length, accuracy: correct / x.length };
}

const log = (msg: string) => process.stdout.write(`${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  let lr = num('lr');
  const w = new Array<number>(d).fill(0);
  let b = 0;
  let step = 0;
  let checkpointVersion = 0;
  const dir = args['checkpoint-dir'] ?? 'checkpoints';
  const checkpoint = (epoch: number): string => {
    mkdirSync(dir, { recursive: true });
    checkpointVersion++;
    const file = join(dir, `ckpt-${String(checkpointVersion).padStart(4, '0')}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify({ w, b, step, epoch }));
    renameSync(`${file}.tmp`, file); // whole or absent
    return file;
  };

  const learner = process.env.RUNPLANE_RUN_ID
    ? new Learner()
        .onTune((p) => {
          if (p.learning_rate !== undefined) {
            lr = p.learning_rate;
            log(`tune: learning_rate=${lr}`);
          }
        })
        .onPause(() => log('pause requested'))
        .onResume(() => log('resume requested'))
        .onTerminate((p) => log(`terminate requested: ${p.reason}`))
    : null;
  await learner?.start();
  // Ctrl-C: tell runplane the run was stopped on purpose rather than leave it to go stale.
  process.once('SIGINT', () => {
    void learner?.close({ status: 'terminated', error: 'interrupted' }).finally(() => process.exit(130));
  });

  const batch = num('batch-size');
  const delay = num('step-delay-ms');
  let epoch = 0;
  try {
    for (epoch = 1; epoch <= num('epochs') && !learner?.shouldStop; epoch++) {
      const started = performance.now();
      let seen = 0;
      for (let i = 0; i < xTrain.length && !learner?.shouldStop; i += batch) {
        if (learner?.paused) {
          log(`paused at step ${step}`);
          await learner.waitWhilePaused();
          if (!learner.shouldStop) log(`resumed at step ${step}`);
          continue;
        }
        const gw = new Array<number>(d).fill(0);
        let gb = 0;
        const xb = xTrain.slice(i, i + batch);
        xb.forEach((xi, j) => {
          const err = sigmoid(dot(w, xi) + b) - (yTrain[i + j] ?? 0);
          xi.forEach((v, k) => {
            gw[k] = (gw[k] ?? 0) + err * v;
          });
          gb += err;
        });
        for (let k = 0; k < d; k++) w[k] = (w[k] ?? 0) - (lr * (gw[k] ?? 0)) / xb.length;
        b -= (lr * gb) / xb.length;
        step++;
        seen += xb.length;
        const { loss } = evaluate(w, b, xb, yTrain.slice(i, i + batch));
        learner?.update({
          step,
          loss,
          samples_per_sec: (seen * 1000) / (performance.now() - started + 1e-6),
        });
        // Yield to the event loop every step so heartbeats and commands get their turn.
        await sleep(delay);
      }
      if (learner?.shouldStop) break;
      const train = evaluate(w, b, xTrain, yTrain);
      const val = evaluate(w, b, xVal, yVal);
      log(
        `epoch ${epoch} step ${step} loss ${train.loss.toFixed(4)} val_loss ${val.loss.toFixed(4)} ` +
          `val_accuracy ${val.accuracy.toFixed(4)} lr ${lr}`,
      );
      await learner?.reportMetrics(step, {
        loss: train.loss,
        val_loss: val.loss,
        val_accuracy: val.accuracy,
        learning_rate: lr,
      });
    }
    if (learner?.terminateRequest) {
      if (learner.terminateRequest.final_checkpoint) {
        const file = checkpoint(epoch);
        log(`final checkpoint ${checkpointVersion}: ${file}`);
      }
    } else {
      const file = checkpoint(epoch - 1);
      log(`checkpoint ${checkpointVersion}: ${file}`);
    }
    learner?.update({ checkpoint_version: checkpointVersion });
  } catch (err) {
    await learner?.close({ status: 'failed', error: String(err) });
    throw err;
  }
  const run = await learner?.close();
  log(run ? `run ${run.run_id} finished: ${run.status}` : 'finished');
}

await main();
