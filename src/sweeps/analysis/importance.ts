/**
 * Hyperparameter importance by PED-ANOVA (Watanabe et al., IJCAI 2023) — pure. For each
 * parameter, the Pearson divergence between its distribution among the top-γ trials and among
 * all trials: a parameter whose good values are spread like all values matters little; one whose
 * good values gather in a corner matters much. Closed form, no surrogate model, so it is fast and
 * deterministic. Numeric parameters are compared on their (log) unit scale with Gaussian kernel
 * densities; categoricals by smoothed frequencies. Importances are normalised to sum to 1.
 */
import { type NumericSpec, type Params, type Space, toUnit } from '../space.js';

const GRID = 128;

function kde(points: readonly number[], grid: readonly number[]): number[] {
  const n = points.length;
  const m = points.reduce((s, x) => s + x, 0) / n;
  const sd = Math.sqrt(points.reduce((s, x) => s + (x - m) ** 2, 0) / Math.max(1, n - 1));
  // Scott's rule, floored so a collapsed sample is still a density.
  const h = Math.max(1.06 * sd * n ** -0.2, 0.02);
  const out = grid.map((g) => {
    let s = 0;
    for (const x of points) s += Math.exp(-0.5 * ((g - x) / h) ** 2);
    return s;
  });
  const total = out.reduce((s, x) => s + x, 0);
  return out.map((x) => x / total);
}

function pearsonDivergence(local: readonly number[], global: readonly number[]): number {
  let d = 0;
  for (let i = 0; i < local.length; i++) {
    const g = global[i] ?? 0;
    if (g <= 0) continue;
    d += g * ((local[i] ?? 0) / g - 1) ** 2;
  }
  return d;
}

export function pedAnova(
  space: Space,
  trials: ReadonlyArray<{ params: Params; value: number }>,
  direction: 'minimize' | 'maximize',
  gamma = 0.25,
): Array<{ param: string; importance: number }> {
  const names = Object.keys(space);
  if (trials.length < 4) return names.map((param) => ({ param, importance: 0 }));
  const sorted = [...trials].sort((a, b) =>
    direction === 'minimize' ? a.value - b.value : b.value - a.value,
  );
  const top = sorted.slice(0, Math.max(2, Math.ceil(sorted.length * gamma)));
  const raw = names.map((param) => {
    const spec = space[param];
    if (!spec) return { param, d: 0 };
    const all = trials.map((t) => t.params[param]).filter((v) => v !== undefined);
    const good = top.map((t) => t.params[param]).filter((v) => v !== undefined);
    if (good.length < 2 || all.length < 2) return { param, d: 0 };
    if (spec.type === 'categorical') {
      const k = spec.choices.length;
      const freq = (vals: readonly unknown[]) =>
        spec.choices.map((c) => (vals.filter((v) => v === c).length + 0.5) / (vals.length + 0.5 * k));
      return { param, d: pearsonDivergence(freq(good), freq(all)) };
    }
    const grid = Array.from({ length: GRID }, (_, i) => (i + 0.5) / GRID);
    const unit = (vals: readonly unknown[]) => vals.map((v) => toUnit(spec as NumericSpec, Number(v)));
    return { param, d: pearsonDivergence(kde(unit(good), grid), kde(unit(all), grid)) };
  });
  const total = raw.reduce((s, r) => s + r.d, 0);
  return raw
    .map((r) => ({ param: r.param, importance: total > 0 ? r.d / total : 0 }))
    .sort((a, b) => b.importance - a.importance);
}
