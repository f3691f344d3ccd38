/**
 * `npm run bench -- asha`: on a synthetic learning-curve benchmark, the compute ASHA needs to
 * match random search's full-budget result. Random search trains N configurations for max_t
 * steps each (N · max_t steps of compute) and keeps the best final loss; ASHA (the controller's
 * own scheduler code, `src/sweeps/schedulers/asha.ts`, deciding every step on W asynchronous
 * workers) samples configurations from the same distribution until one of its trials trained to
 * max_t is at least as good. Compute is counted in training steps. Target: <= 1/3.
 *
 * The curves: loss(t) = final + a · exp(-t / tau) + noise, with final, a and tau depending on
 * the configuration, so that curves cross (some configurations learn slowly but end well) and
 * early ranks are only partly informative, as in real hyperparameter searches.
 */
import type { SchedulerSpec } from '../src/sweeps/model.js';
import { median } from '../src/sweeps/optimizers/math.js';
import { Rng } from '../src/sweeps/optimizers/rng.js';
import { createScheduler, type TrialView } from '../src/sweeps/schedulers/index.js';
import { parseFlags } from './lib/options.js';
import { printTable } from './lib/table.js';
import { machineLine } from './lib/timing.js';

export const usage = `npm run bench -- asha [options]

  --seeds <n>       repetitions (default 20)
  --configs <n>     random search's configurations (default 81)
  --max-t <n>       full budget in steps (default 81)
  --rf <n>          ASHA reduction factor (default 3)
  --grace <n>       ASHA grace period in steps (default: 1, 3 and 9, a row each)
  --workers <n>     ASHA's parallel workers (default 8)
  --markdown        also print the table as markdown (for bench/RESULTS.md)`;

const TARGET = 1 / 3;

interface Options {
  seeds: number;
  configs: number;
  maxT: number;
  rf: number;
  grace: number[];
  workers: number;
  markdown: boolean;
}

function options(argv: string[]): Options {
  const f = parseFlags(argv, {
    seeds: 'string',
    configs: 'string',
    'max-t': 'string',
    rf: 'string',
    grace: 'string',
    workers: 'string',
    markdown: 'boolean',
  });
  return {
    seeds: f.int('seeds', 20),
    configs: f.int('configs', 81),
    maxT: f.int('max-t', 81),
    rf: f.int('rf', 3),
    grace: f.str('grace') === undefined ? [1, 3, 9] : [f.int('grace', 1)],
    workers: f.int('workers', 8),
    markdown: f.bool('markdown'),
  };
}

/** A configuration's learning curve (deterministic given the configuration and its noise seed). */
interface Curve {
  final: number;
  amplitude: number;
  tau: number;
  noise: number;
  seed: number;
}

function sampleCurve(rng: Rng): Curve {
  const x = [rng.next(), rng.next(), rng.next(), rng.next()];
  const [a = 0, b = 0, c = 0, d = 0] = x;
  // The final loss: a smooth bowl with its optimum off-centre plus a weaker interaction term.
  const final = 0.1 + (a - 0.7) ** 2 + 0.5 * (b - 0.3) ** 2 + 0.3 * a * (1 - c) * 0.5;
  // How fast it learns, independent of how well it ends: slow learners are not the bad ones,
  // so curves cross and early ranks are only partly right.
  const tau = 1.5 + 4 * c;
  return { final, amplitude: 0.4 + 0.4 * d, tau, noise: 0.02, seed: rng.nextU32() };
}

function lossAt(c: Curve, t: number): number {
  const r = Rng.for('noise', c.seed, t);
  return c.final + c.amplitude * Math.exp(-t / c.tau) + c.noise * r.normal();
}

function randomSearch(seed: number, o: Options): { best: number; compute: number } {
  const rng = Rng.for('configs', seed);
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < o.configs; i++) best = Math.min(best, lossAt(sampleCurve(rng), o.maxT));
  return { best, compute: o.configs * o.maxT };
}

interface SimTrial {
  view: TrialView;
  curve: Curve;
  step: number;
}

/**
 * ASHA on W workers, stepped in lock-step: every running trial trains one step per tick and
 * reports its loss; then the scheduler decides (rung records, stops) as the controller does.
 */
function asha(
  seed: number,
  o: Options,
  grace: number,
  target: number,
): { compute: number; matched: boolean; trials: number } {
  const spec: Extract<SchedulerSpec, { type: 'asha' | 'hyperband' }> = {
    type: 'asha',
    metric: 'loss',
    direction: 'minimize',
    reduction_factor: o.rf,
    grace_period: grace,
    max_t: o.maxT,
    brackets: 1,
  };
  const scheduler = createScheduler(spec);
  const rng = Rng.for('configs', seed + 1_000_000);
  const trials: SimTrial[] = [];
  let compute = 0;
  const cap = o.configs * o.maxT * 2;
  const running = () => trials.filter((t) => t.view.status === 'IN_TRAINING');
  while (compute < cap) {
    const decision = scheduler.decide({
      trials: trials.map((t) => t.view),
      space: {},
      seed,
      trialCount: trials.length,
      maxTrials: null,
      maxParallel: o.workers,
      exhausted: false,
      stopping: false,
    });
    for (const r of decision.record) {
      const t = trials[r.number];
      if (t) t.view.rungs = { ...t.view.rungs, ...r.rungs };
    }
    for (const s of decision.stop) {
      const t = trials[s.number];
      if (t) {
        t.view.status = 'PRUNED';
        t.view.active = false;
      }
    }
    for (let i = 0; i < decision.create; i++) {
      const number = trials.length;
      trials.push({
        curve: sampleCurve(rng),
        step: 0,
        view: {
          number,
          status: 'IN_TRAINING',
          params: {},
          values: null,
          series: [],
          rungs: {},
          bracket: decision.assign(number).bracket,
          member: null,
          parentNumber: null,
          startStep: 0,
          active: true,
          needsTraining: false,
        },
      });
    }
    for (const t of running()) {
      t.step++;
      compute++;
      const loss = lossAt(t.curve, t.step);
      t.view.series.push({ step: t.step, value: loss });
      if (t.step >= o.maxT) {
        t.view.status = 'COMPLETED';
        t.view.active = false;
        t.view.values = [loss];
        if (loss <= target) return { compute, matched: true, trials: trials.length };
      }
    }
  }
  return { compute, matched: false, trials: trials.length };
}

export async function runAsha(argv: string[]): Promise<void> {
  const o = options(argv);
  console.log(`asha benchmark: ${machineLine()}`);
  console.log(
    `random search: ${o.configs} configurations x ${o.maxT} steps; ASHA: rf ${o.rf}, max_t ${o.maxT}, ${o.workers} workers, grace ${o.grace.join(' / ')}; ${o.seeds} seeds`,
  );
  const headers = ['setting', 'matched', 'median ratio', 'min', 'max', 'target', 'met'];
  const summary: Array<Array<string | number>> = [];
  for (const grace of o.grace) {
    const ratios: number[] = [];
    const rows: Array<Array<string | number>> = [];
    let matched = 0;
    for (let seed = 0; seed < o.seeds; seed++) {
      const rs = randomSearch(seed, o);
      const a = asha(seed, o, grace, rs.best);
      if (a.matched) matched++;
      const ratio = a.compute / rs.compute;
      ratios.push(ratio);
      rows.push([
        seed,
        rs.best.toFixed(4),
        rs.compute,
        a.matched ? a.compute : `>${a.compute}`,
        a.trials,
        ratio.toFixed(3),
      ]);
    }
    console.log(`\ngrace period ${grace}:`);
    printTable(['seed', 'random best', 'random steps', 'ASHA steps to match', 'ASHA trials', 'ratio'], rows);
    const med = median(ratios);
    summary.push([
      `${o.configs} x ${o.maxT}, rf ${o.rf}, grace ${grace}, ${o.workers} workers`,
      `${matched}/${o.seeds}`,
      med.toFixed(3),
      Math.min(...ratios).toFixed(3),
      Math.max(...ratios).toFixed(3),
      `<= ${TARGET.toFixed(3)}`,
      med <= TARGET ? 'yes' : 'no',
    ]);
  }
  console.log('');
  printTable(headers, summary, o.markdown);
}
