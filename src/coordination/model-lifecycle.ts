/**
 * Model lifecycle (pure).
 *
 * Glossary:
 * - model: a trained artefact of one config (`hex8_2p`), registered with a path and metrics.
 * - production model: the one model of a config in state `production`; a promotion archives
 *   the one before and remembers it (`previous_model_id`), so a rollback can restore it.
 *
 * States: training → evaluating → staging → production → archived; a failed evaluation
 * archives; a rollback moves production → rolled_back and the previous one archived → production.
 */
export const MODEL_STATES = [
  'training',
  'evaluating',
  'staging',
  'production',
  'rolled_back',
  'archived',
] as const;
export type ModelState = (typeof MODEL_STATES)[number];

const TRANSITIONS: Record<ModelState, readonly ModelState[]> = {
  training: ['evaluating', 'staging', 'production', 'archived'],
  evaluating: ['staging', 'production', 'archived'],
  staging: ['production', 'archived'],
  production: ['archived', 'rolled_back'],
  rolled_back: ['staging', 'production', 'archived'],
  // A rollback restores an archived production model.
  archived: ['production'],
};

export function canTransition(from: ModelState, to: ModelState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isModelState(s: string): s is ModelState {
  return (MODEL_STATES as readonly string[]).includes(s);
}

/** Why `from → to` is refused, or null when it is allowed. */
export function transitionError(from: ModelState, to: ModelState): string | null {
  if (from === to) return null;
  return canTransition(from, to)
    ? null
    : `a model in state ${from} cannot become ${to} (allowed: ${TRANSITIONS[from].join(', ') || 'none'})`;
}
