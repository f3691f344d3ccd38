/**
 * `npm run bench -- optimizers`: runplane's optimizers against Optuna's TPE (Debian
 * python3-optuna, run with /usr/bin/python3 in the same benchmark) on Branin, Hartmann6,
 * Rosenbrock-4, Ackley-5 and noisy Hartmann6: median simple regret over seeds at 25, 50, 100
 * and 200 trials, and the time of one suggestion with 100 and 1,000 completed trials.
 * Targets: the best runplane optimizer has a lower median regret than Optuna TPE at 100 trials
 * on every function, and its suggestion time at 1,000 trials is <= 10% of Optuna's.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createOptimizer, type Observation } from '../src/sweeps/optimizers/index.js';
import { median } from '../src/sweeps/optimizers/math.js';
import { Rng } from '../src/sweeps/optimizers/rng.js';
import type { Space } from '../src/sweeps/space.js';
import { parseFlags, UsageError } from './lib/options.js';
import { type Cell, printTable } from './lib/table.js';
import { noise, TEST_FUNCTIONS, type TestFunction } from './lib/test-functions.js';
import { machineLine, mapLimit, nowMs } from './lib/timing.js';

const PYTHON = '/usr/bin/python3';
const ANCHOR = fileURLToPath(new URL('./lib/optuna_anchor.py', import.meta.url));
const CHECKPOINTS = [25, 50, 100, 200];
const TARGET_AT = 100;
const TARGET_TIME_RATIO = 0.1;

export const usage = `npm run bench -- optimizers [options]
  --seeds N           seeds per function and optimizer (default 20)
  --trials T          trials per run (default 200); regret is reported at 25, 50, 100, 200 <= T
  --functions LIST    comma-separated (default ${Object.keys(TEST_FUNCTIONS).join(',')})
  --optimizers LIST   runplane optimizers to run (default random,sobol,tpe,gp,cmaes)
  --timing-at LIST    completed trials for the suggestion-time measurement (default 100,1000)
  --timing-repeats R  suggestions timed at each size (default 10)
  --skip-optuna       leave out the Optuna TPE anchor
  --skip-timing       leave out the suggestion-time measurement
  --markdown          also print the tables as markdown`;

interface Options {
  seeds: number;
  trials: number;
  functions: TestFunction[];
  optimizers: string[];
  timingAt: number[];
  timingRepeats: number;
  skipOptuna: boolean;
  skipTiming: boolean;
  markdown: boolean;
}

function parseOptions(argv: string[]): Options {
  const f = parseFlags(argv, {
    seeds: 'string',
    trials: 'string',
    functions: 'string',
    optimizers: 'string',
    'timing-at': 'string',
    'timing-repeats': 'string',
    'skip-optuna': 'boolean',
    'skip-timing': 'boolean',
    markdown: 'boolean',
  });
  const functions = f.list('functions', Object.keys(TEST_FUNCTIONS)).map((name) => {
    const fn = TEST_FUNCTIONS[name];
    if (fn === undefined) throw new UsageError(`--functions: unknown function "${name}"`);
    return fn;
  });
  return {
    seeds: f.int('seeds', 20),
    trials: f.int('trials', 200),
    functions,
    optimizers: f.list('optimizers', ['random', 'sobol', 'tpe', 'gp', 'cmaes']),
    timingAt: f.intList('timing-at', [100, 1000]),
    timingRepeats: f.int('timing-repeats', 10),
    skipOptuna: f.bool('skip-optuna'),
    skipTiming: f.bool('skip-timing'),
    markdown: f.bool('markdown'),
  };
}

function spaceOf(fn: TestFunction): Space {
  const space: Space = {};
  fn.bounds.forEach(([low, high], i) => {
    space[`x${i}`] = { type: 'float', low, high };
  });
  return space;
}

const pointOf = (fn: TestFunction, params: Record<string, unknown>): number[] =>
  fn.bounds.map((_, i) => params[`x${i}`] as number);

/** Simple regret after each trial: true value at the best observed value, minus the optimum. */
function runOurs(type: string, fn: TestFunction, seed: number, trials: number): number[] {
  const opt = createOptimizer({ type, seed }, spaceOf(fn), ['minimize']);
  const history: Observation[] = [];
  const curve: number[] = [];
  let bestObserved = Number.POSITIVE_INFINITY;
  let bestTrue = Number.POSITIVE_INFINITY;
  for (let number = 0; number < trials; number++) {
    const params = opt.suggest(number, history, []);
    if (params === null) break;
    const trueValue = fn.f(pointOf(fn, params));
    const observed = trueValue + (fn.noise > 0 ? noise(seed, number, fn.noise) : 0);
    history.push({ number, params, values: [observed], state: 'completed' });
    if (observed < bestObserved) {
      bestObserved = observed;
      bestTrue = trueValue;
    }
    curve.push(bestTrue - fn.optimum);
  }
  return curve;
}

/** Median CPU milliseconds of one suggestion with `completed` finished (random) trials. */
function timeOurs(type: string, fn: TestFunction, completed: number, repeats: number): number {
  const space = spaceOf(fn);
  const opt = createOptimizer({ type, seed: 1 }, space, ['minimize']);
  const rng = Rng.for('timing', fn.name, completed);
  const history: Observation[] = [];
  for (let number = 0; number < completed; number++) {
    const params: Record<string, number> = {};
    fn.bounds.forEach(([lo, hi], i) => {
      params[`x${i}`] = rng.uniform(lo, hi);
    });
    history.push({ number, params, values: [fn.f(pointOf(fn, params))], state: 'completed' });
  }
  // Warm the JIT first; then the median CPU time of single suggestions (the machine is shared:
  // CPU time and the median keep other processes out of the figure; Python measures the same).
  for (let k = 0; k < 5; k++) opt.suggest(completed + k, history, []);
  const times: number[] = [];
  for (let k = 0; k < repeats; k++) {
    const t0 = process.cpuUsage();
    opt.suggest(completed + 5 + k, history, []);
    const used = process.cpuUsage(t0);
    times.push((used.user + used.system) / 1000);
  }
  return median(times);
}

async function optuna(job: Record<string, unknown>): Promise<{ version: string; result: unknown }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [ANCHOR], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`optuna anchor failed (${code}): ${err.trim()}`));
      else {
        const parsed = JSON.parse(out) as { optuna: string; result: unknown };
        resolve({ version: parsed.optuna, result: parsed.result });
      }
    });
    child.stdin.end(JSON.stringify(job));
  });
}

async function optunaAvailable(): Promise<string | null> {
  return new Promise((resolve) => {
    const child = spawn(PYTHON, ['-c', 'import optuna; print(optuna.__version__)'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', () => resolve(null));
    child.on('close', (code) => resolve(code === 0 ? out.trim() : null));
  });
}

const fmtRegret = (v: number | undefined): string => {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  if (v === 0) return '0';
  return Math.abs(v) >= 100 ? v.toFixed(0) : v < 1e-3 ? v.toExponential(1) : v.toPrecision(3);
};
const fmtRatio = (r: number): string =>
  Number.isFinite(r) ? `${r >= 0.1 ? r.toFixed(2) : r.toExponential(1)} x` : 'n/a';
const fmtPct = (r: number): string => `${100 * r >= 1 ? (100 * r).toFixed(1) : (100 * r).toPrecision(1)}%`;
const fmtMs = (v: number | undefined): string =>
  v === undefined ? 'n/a' : v >= 100 ? v.toFixed(0) : v.toPrecision(3);

export async function runOptimizers(argv: string[]): Promise<void> {
  const o = parseOptions(argv);
  const checkpoints = CHECKPOINTS.filter((c) => c <= o.trials);
  const seeds = Array.from({ length: o.seeds }, (_, i) => i + 1);
  let optunaVersion = o.skipOptuna ? null : await optunaAvailable();
  if (!o.skipOptuna && optunaVersion === null) {
    console.log(`Optuna anchor skipped: ${PYTHON} cannot import optuna (apt-get install -y python3-optuna)`);
  }
  console.log(machineLine());
  console.log(
    `${o.seeds} seeds x ${o.trials} trials; functions: ${o.functions.map((f) => f.name).join(', ')}\n`,
  );

  // Optuna runs in child processes while this process runs runplane's optimizers (yielding
  // between runs so the pool can start the next one): the two sides overlap on two cores.
  const optunaJobs =
    optunaVersion === null ? [] : o.functions.flatMap((fn) => seeds.map((seed) => ({ fn, seed })));
  const optunaDone = mapLimit(optunaJobs, 1, async ({ fn, seed }) => {
    const r = await optuna({
      kind: 'regret',
      function: fn.name,
      seed,
      trials: o.trials,
      sigma: fn.noise,
      optimum: fn.optimum,
    });
    optunaVersion = r.version;
    return r.result as number[];
  }).then(
    (runs) => ({ runs, error: null }),
    // Held until awaited below, so a failing anchor is reported, not an unhandled rejection.
    (error: unknown) => ({ runs: [] as number[][], error }),
  );
  const ours = new Map<string, Map<string, number[][]>>();
  for (const fn of o.functions) {
    const byType = new Map<string, number[][]>();
    ours.set(fn.name, byType);
    for (const type of o.optimizers) {
      const t0 = nowMs();
      const runs: number[][] = [];
      for (const seed of seeds) {
        runs.push(runOurs(type, fn, seed, o.trials));
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      byType.set(type, runs);
      process.stderr.write(`  ${fn.name} ${type}: ${((nowMs() - t0) / 1000).toFixed(1)} s\n`);
    }
  }
  const anchorResult = await optunaDone;
  if (anchorResult.error !== null) throw anchorResult.error;
  const optunaRuns = anchorResult.runs;

  // medians[function][optimizer][checkpoint]
  const medians = new Map<string, Map<string, number[]>>();
  for (const fn of o.functions) {
    const byOpt = new Map<string, number[]>();
    medians.set(fn.name, byOpt);
    const curves = new Map<string, number[][]>();
    if (optunaVersion !== null) {
      curves.set(
        'optuna-tpe',
        optunaRuns.filter((_, i) => optunaJobs[i]?.fn === fn),
      );
    }
    for (const [type, runs] of ours.get(fn.name) ?? []) curves.set(type, runs);
    for (const [name, runs] of curves) {
      byOpt.set(
        name,
        checkpoints.map((c) => median(runs.map((r) => r[Math.min(c, r.length) - 1] ?? Number.NaN))),
      );
    }
  }

  const headers = [
    'function',
    'optimizer',
    ...checkpoints.map((c) => `regret@${c}`),
    `vs Optuna @${TARGET_AT}`,
  ];
  const rows: Cell[][] = [];
  const at = checkpoints.indexOf(TARGET_AT);
  const beats = new Map<string, number>();
  const logRatios = new Map<string, number[]>();
  for (const [fname, byOpt] of medians) {
    const anchor = byOpt.get('optuna-tpe');
    for (const [name, values] of byOpt) {
      const ratio =
        anchor !== undefined && at >= 0 && name !== 'optuna-tpe'
          ? (values[at] ?? Number.NaN) / (anchor[at] ?? Number.NaN)
          : null;
      if (ratio !== null && ratio < 1) beats.set(name, (beats.get(name) ?? 0) + 1);
      // Regret 0 against 0 counts as a tie; a 0 ratio is clamped so the mean stays finite.
      if (ratio !== null)
        logRatios.set(name, [...(logRatios.get(name) ?? []), Math.log(Math.max(ratio, 1e-12) || 1)]);
      rows.push([fname, name, ...values.map(fmtRegret), ratio === null ? '' : fmtRatio(ratio)]);
    }
  }
  console.log(`Median simple regret over ${o.seeds} seeds (lower is better)`);
  printTable(headers, rows, o.markdown);
  if (optunaVersion !== null)
    console.log(`\nanchor: Optuna ${optunaVersion} TPESampler (defaults), ${PYTHON}`);

  const timeRatios = new Map<string, number[]>();
  if (!o.skipTiming) await timing(o, optunaVersion !== null, timeRatios);
  if (optunaVersion !== null && at >= 0) summarize(o, beats, logRatios, timeRatios);
}

async function timing(o: Options, anchor: boolean, timeRatios: Map<string, number[]>): Promise<void> {
  const tHeaders = ['function', 'optimizer', ...o.timingAt.map((n) => `ms/suggest @${n}`)];
  const tRows: Cell[][] = [];
  const ourMs = new Map<string, number[]>();
  for (const fn of o.functions) {
    if (anchor) {
      const ms: number[] = [];
      for (const n of o.timingAt) {
        const r = await optuna({
          kind: 'timing',
          function: fn.name,
          completed: n,
          repeats: o.timingRepeats,
          seed: 1,
        });
        ms.push((r.result as number) * 1000);
      }
      ourMs.set(`${fn.name}/optuna-tpe`, ms);
      tRows.push([fn.name, 'optuna-tpe', ...ms.map(fmtMs)]);
    }
    for (const type of o.optimizers) {
      const ms = o.timingAt.map((n) => timeOurs(type, fn, n, o.timingRepeats));
      ourMs.set(`${fn.name}/${type}`, ms);
      tRows.push([fn.name, type, ...ms.map(fmtMs)]);
    }
  }
  const last = o.timingAt.length - 1;
  if (anchor) {
    tHeaders.push(`vs Optuna @${o.timingAt[last]}`);
    for (const r of tRows) {
      const anchor = ourMs.get(`${r[0]}/optuna-tpe`)?.[last];
      const mine = ourMs.get(`${r[0]}/${r[1]}`)?.[last];
      r.push(
        r[1] === 'optuna-tpe' || anchor === undefined || mine === undefined ? '' : fmtPct(mine / anchor),
      );
    }
  }
  console.log(`\nCPU time per suggestion (median of ${o.timingRepeats}; history of random completed trials)`);
  printTable(tHeaders, tRows, o.markdown);
  for (const name of o.optimizers) {
    for (const fn of o.functions) {
      const a = ourMs.get(`${fn.name}/optuna-tpe`)?.[last];
      const m = ourMs.get(`${fn.name}/${name}`)?.[last];
      if (a !== undefined && m !== undefined) timeRatios.set(name, [...(timeRatios.get(name) ?? []), m / a]);
    }
  }
}

/** Which optimizer meets which target; the best is the one ahead of Optuna most often. */
function summarize(
  o: Options,
  beats: Map<string, number>,
  logRatios: Map<string, number[]>,
  timeRatios: Map<string, number[]>,
): void {
  const nf = o.functions.length;
  const last = o.timingAt[o.timingAt.length - 1];
  const rows: Cell[][] = [];
  const score = (name: string): [number, number] => {
    const lr = logRatios.get(name) ?? [];
    return [
      beats.get(name) ?? 0,
      lr.length > 0 ? Math.exp(lr.reduce((a, b) => a + b, 0) / lr.length) : Number.NaN,
    ];
  };
  for (const name of o.optimizers) {
    const [won, geo] = score(name);
    const times = timeRatios.get(name) ?? [];
    const worst = times.length === nf ? Math.max(...times) : null;
    rows.push([
      name,
      `${won}/${nf}`,
      Number.isFinite(geo) ? `${geo.toPrecision(2)} x` : 'n/a',
      worst === null ? 'n/a' : fmtPct(worst),
      won === nf ? 'met' : 'NOT met',
      worst === null ? 'n/a' : worst <= TARGET_TIME_RATIO ? 'met' : 'NOT met',
    ]);
  }
  const headers = [
    'optimizer',
    `lower regret @${TARGET_AT}`,
    'geo-mean regret ratio',
    `worst time ratio @${last}`,
    'regret target',
    'time target',
  ];
  console.log(
    `\nTargets: lower median regret than Optuna TPE at ${TARGET_AT} trials on every function; CPU time per suggestion at ${last} trials <= ${TARGET_TIME_RATIO * 100}% of Optuna's on every function`,
  );
  printTable(headers, rows, o.markdown);
  const best = [...o.optimizers].sort((a, b) => {
    const [wa, ga] = score(a);
    const [wb, gb] = score(b);
    return wb - wa || ga - gb;
  })[0];
  if (best !== undefined)
    console.log(
      `best runplane optimizer (most functions ahead of Optuna @${TARGET_AT}, then geo-mean ratio): ${best}`,
    );
}
