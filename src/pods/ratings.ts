/**
 * League ratings across pods (pure): a Plackett-Luce model from the `openskill` package with
 * tau = 0, because participants are fixed (a checkpoint's strength does not drift between games,
 * so no extra uncertainty is added per game). Plus Kendall's tau for comparing rankings.
 */
import { ordinal, rate, rating } from 'openskill';
import { plackettLuce } from 'openskill/models';
import type { SkillEstimate } from './matchmaker.js';

export const DEFAULT_MU = 25;
export const DEFAULT_SIGMA = 25 / 3;
export const BETA = 25 / 6;

export interface LeagueRating extends SkillEstimate {
  games: number;
}

export function newRating(): LeagueRating {
  const r = rating();
  return { mu: r.mu, sigma: r.sigma, games: 0 };
}

/** The conservative skill estimate mu - 3 sigma (openskill's ordinal). */
export function conservative(r: SkillEstimate): number {
  return ordinal(r);
}

/**
 * Applies one game: placements 1..4 per participant (ties share a placement). Returns the new
 * ratings of the participants of that game.
 */
export function rateGame(
  ratings: ReadonlyMap<string, LeagueRating>,
  placements: Readonly<Record<string, number>>,
): Map<string, LeagueRating> {
  const ids = Object.keys(placements).sort();
  const before = ids.map((id) => ratings.get(id) ?? newRating());
  const teams = before.map((r) => [{ mu: r.mu, sigma: r.sigma }]);
  const rank = ids.map((id) => placements[id] ?? 0);
  const after = rate(teams, { rank, tau: 0, model: plackettLuce });
  const out = new Map<string, LeagueRating>();
  ids.forEach((id, i) => {
    const r = after[i]?.[0];
    const b = before[i] as LeagueRating;
    out.set(id, { mu: r?.mu ?? b.mu, sigma: r?.sigma ?? b.sigma, games: b.games + 1 });
  });
  return out;
}

/**
 * Kendall's tau-b between two orders of the same items (best first): 1 when they agree,
 * -1 when reversed. Items missing from one order are ignored.
 */
export function kendallTau(a: readonly string[], b: readonly string[]): number {
  const pos = new Map(b.map((id, i) => [id, i]));
  const items = a.filter((id) => pos.has(id));
  let concordant = 0;
  let discordant = 0;
  for (let i = 0; i < items.length; i++)
    for (let j = i + 1; j < items.length; j++) {
      const d = (pos.get(items[i] ?? '') ?? 0) - (pos.get(items[j] ?? '') ?? 0);
      if (d < 0) concordant++;
      else if (d > 0) discordant++;
    }
  const n = concordant + discordant;
  return n === 0 ? 1 : (concordant - discordant) / n;
}
