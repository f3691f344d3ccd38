import { describe, expect, it } from 'vitest';
import { canTransition, MODEL_STATES, transitionError } from '../../src/coordination/model-lifecycle.js';

describe('model lifecycle state machine', () => {
  it('follows training → evaluating → staging → production → archived', () => {
    expect(canTransition('training', 'evaluating')).toBe(true);
    expect(canTransition('evaluating', 'staging')).toBe(true);
    expect(canTransition('staging', 'production')).toBe(true);
    expect(canTransition('production', 'archived')).toBe(true);
  });

  it('a rollback moves production to rolled_back and restores an archived model', () => {
    expect(canTransition('production', 'rolled_back')).toBe(true);
    expect(canTransition('archived', 'production')).toBe(true);
  });

  it('refuses the rest with a reason', () => {
    expect(transitionError('archived', 'training')).toMatch(/cannot become training/);
    expect(canTransition('production', 'staging')).toBe(false);
    expect(canTransition('staging', 'rolled_back')).toBe(false);
    for (const s of MODEL_STATES) expect(transitionError(s, s)).toBeNull();
  });
});
