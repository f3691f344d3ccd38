/**
 * Synthetic pods with known answers (pure): participants with hidden strengths, games sampled
 * from a Plackett-Luce model, and a pod run the way the controller runs it (adaptive epochs,
 * the evaluator after every reported batch, a stop the moment the target is met). The unit
 * tests and `npm run bench -- pods` use it; examples/league/simulate.mjs samples games the same way.
 */
import { nextEpochSize } from './epoch-sizing.js';
import type { PodConfig } from './model.js';
import { type Evaluation, type Evidence, evaluate } from './posterior.js';
import { hashString, mixSeed, type Rng, seededRng } from './random.js';

/** One game: placements 1..4 drawn from the Plackett-Luce model of the strengths. */
export function samplePlacements(
  participants: readonly string[],
  strengths: ReadonlyMap<string, number>,
  rng: Rng,
): Record<string, number> {
  const left = [...participants];
  const out: Record<string, number> = {};
  for (let place = 1; left.length > 0; place++) {
    const w = left.map((p) => Math.exp(strengths.get(p) ?? 0));
    let r = rng() * w.reduce((s, x) => s + x, 0);
    let k = 0;
    while (k < left.length - 1 && r >= (w[k] ?? 0)) {
      r -= w[k] ?? 0;
      k++;
    }
    out[left[k] ?? ''] = place;
    left.splice(k, 1);
  }
  return out;
}

export interface PodRun {
  games: Array<Record<string, number>>;
  epochs: number[];
  converged: boolean;
  stop_reason: 'confidence_target_met' | 'max_epochs' | 'budget';
  evaluation: Evaluation | null;
}

/**
 * Plays a pod until the evaluator converges or `max_epochs_per_pod` is reached, evaluating
 * after every `batch` games as the controller does when a simulation job posts a batch.
 * With `fixedGames`, plays exactly that many games instead (the fixed-budget baseline).
 */
export function runPod(
  participants: readonly string[],
  strengths: ReadonlyMap<string, number>,
  config: Pick<
    PodConfig,
    'epoch_size' | 'confidence_target' | 'precision' | 'max_epochs_per_pod' | 'adaptive_scaling' | 'prior'
  >,
  seed: number,
  opts: { batch?: number; fixedGames?: number } = {},
): PodRun {
  const rng = seededRng(mixSeed(seed, hashString(participants.join(','))));
  const games: Array<Record<string, number>> = [];
  if (opts.fixedGames !== undefined) {
    for (let i = 0; i < opts.fixedGames; i++) games.push(samplePlacements(participants, strengths, rng));
    return { games, epochs: [opts.fixedGames], converged: false, stop_reason: 'budget', evaluation: null };
  }
  const batch = opts.batch ?? 25;
  const counts = new Map(participants.map((p) => [p, [0, 0, 0, 0]]));
  const evidence = (): Evidence[] =>
    participants.map((p) => ({ participant: p, counts: counts.get(p) ?? [] }));
  const epochs: number[] = [];
  let evaluation: Evaluation | null = null;
  while (epochs.length < config.max_epochs_per_pod) {
    const { size } = nextEpochSize({
      adaptive: config.adaptive_scaling,
      epochSize: config.epoch_size,
      previousSize: epochs[epochs.length - 1] ?? null,
      evidence: evidence(),
      prior: config.prior,
      confidenceTarget: config.confidence_target,
      precision: config.precision,
    });
    epochs.push(size);
    for (let played = 0; played < size; ) {
      const n = Math.min(batch, size - played);
      for (let i = 0; i < n; i++) {
        const g = samplePlacements(participants, strengths, rng);
        games.push(g);
        for (const [p, place] of Object.entries(g)) {
          const c = counts.get(p);
          if (c) c[place - 1] = (c[place - 1] ?? 0) + 1;
        }
      }
      played += n;
      evaluation = evaluate({
        evidence: evidence(),
        confidenceTarget: config.confidence_target,
        precision: config.precision,
        prior: config.prior,
        seed: mixSeed(seed, games.length),
      });
      if (evaluation.converged)
        return { games, epochs, converged: true, stop_reason: 'confidence_target_met', evaluation };
    }
  }
  return { games, epochs, converged: false, stop_reason: 'max_epochs', evaluation };
}
