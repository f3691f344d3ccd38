/**
 * Subject patterns as NATS has them (`*` one token, `>` the rest), the bare `*` that the relay's
 * first callers use for "every event", and pattern validation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { matches } from '../../src/events/relay.js';
import {
  compileMatcher,
  natsFilter,
  patternError,
  subjectMatches,
  validEventType,
} from '../../src/events/subjects.js';

describe('subjectMatches', () => {
  it.each([
    ['job.state_changed', 'job.state_changed', true],
    ['job.state_changed', 'job.submitted', false],
    ['job.*', 'job.submitted', true],
    ['job.*', 'job', false],
    ['job.*', 'jobs.submitted', false],
    ['job.*', 'attempt.state_changed', false],
    // `*` is exactly one token: a deeper subject needs another `*` or `>`.
    ['pipeline.*', 'pipeline.training.completed', false],
    ['pipeline.*.completed', 'pipeline.training.completed', true],
    ['pipeline.*.completed', 'pipeline.training.failed', false],
    ['pipeline.*.completed', 'pipeline.completed', false],
    ['*.training.*', 'pipeline.training.failed', true],
    ['pipeline.>', 'pipeline.training.completed', true],
    ['pipeline.>', 'pipeline.selfplay', true],
    ['pipeline.>', 'pipeline', false],
    ['pipeline.training.>', 'pipeline.training.completed', true],
    ['pipeline.training.>', 'pipeline.evaluation.completed', false],
    ['model.promoted', 'model.promoted', true],
    // The relay's original "everything" patterns.
    ['*', 'job.submitted', true],
    ['*', 'pipeline.training.completed', true],
    ['>', 'run.status', true],
  ])('%s against %s: %s', (pattern, subject, expected) => {
    expect(subjectMatches(pattern, subject)).toBe(expected);
    expect(compileMatcher(pattern)(subject)).toBe(expected);
    expect(matches(pattern, subject)).toBe(expected);
  });

  it('keeps the two-token prefix.* patterns of existing subscribers meaning what they meant', () => {
    for (const t of ['run.status', 'run.created', 'run.terminate_recommended'])
      expect(subjectMatches('run.*', t)).toBe(true);
    expect(subjectMatches('run.*', 'runs.status')).toBe(false);
  });

  it('a matcher of several patterns matches when any does', () => {
    const m = compileMatcher(['pipeline.training.completed', 'model.promoted']);
    expect(m('model.promoted')).toBe(true);
    expect(m('pipeline.training.completed')).toBe(true);
    expect(m('pipeline.training.failed')).toBe(false);
    // Memoised answers stay right when asked again.
    expect(m('pipeline.training.failed')).toBe(false);
    expect(m('model.promoted')).toBe(true);
  });

  const token = fc.stringMatching(/^[a-z_][a-z0-9_]{0,6}$/);
  const subject = fc.array(token, { minLength: 1, maxLength: 5 });

  it('a subject always matches itself, its `>` prefixes and its `*` masks (property)', () => {
    fc.assert(
      fc.property(
        subject,
        fc.nat(),
        fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
        (s, cut, mask) => {
          const text = s.join('.');
          expect(subjectMatches(text, text)).toBe(true);
          const k = cut % s.length;
          expect(subjectMatches([...s.slice(0, k), '>'].join('.'), text)).toBe(true);
          const masked = s.map((t, i) => (mask[i] ? '*' : t)).join('.');
          expect(subjectMatches(masked, text)).toBe(true);
          // One token more or less never matches a pattern without `>` (the bare `*` is everything).
          if (masked === '*') return;
          expect(subjectMatches(masked, `${text}.extra`)).toBe(false);
          if (s.length > 1) expect(subjectMatches(masked, s.slice(0, -1).join('.'))).toBe(false);
        },
      ),
    );
  });

  it('compiled matchers agree with subjectMatches (property)', () => {
    const pattern = fc.array(fc.oneof(token, fc.constant('*')), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(pattern, fc.boolean(), subject, (p, tail, s) => {
        const text = (tail ? [...p, '>'] : p).join('.');
        expect(compileMatcher(text)(s.join('.'))).toBe(subjectMatches(text, s.join('.')));
      }),
    );
  });
});

describe('patterns and types', () => {
  it('refuses malformed patterns with a reason', () => {
    expect(patternError('pipeline.>.completed')).toMatch(/last token/);
    expect(patternError('')).toMatch(/empty/);
    expect(patternError('job..x')).toMatch(/invalid token/);
    expect(patternError('job.st ate')).toMatch(/invalid token/);
    expect(patternError('pipeline.*.completed')).toBeNull();
    expect(() => compileMatcher('a.>.b')).toThrow(/invalid subject pattern/);
  });

  it('knows a valid event type', () => {
    expect(validEventType('pipeline.training.completed')).toBe(true);
    expect(validEventType('job.*')).toBe(false);
    expect(validEventType('a..b')).toBe(false);
    expect(validEventType('')).toBe(false);
  });

  it('maps patterns to NATS filter subjects under a base', () => {
    expect(natsFilter('runplane.events', '*')).toBe('runplane.events.>');
    expect(natsFilter('runplane.events', 'pipeline.*.completed')).toBe(
      'runplane.events.pipeline.*.completed',
    );
    expect(natsFilter('runplane.events', 'run.status')).toBe('runplane.events.run.status');
  });
});
