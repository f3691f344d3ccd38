import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  dependencyOrder,
  fromUnit,
  isActive,
  type NumericSpec,
  pruneInactive,
  roundToSpec,
  type Space,
  toUnit,
  validateSpace,
} from '../../src/sweeps/space.js';

const fields = (raw: unknown): string[] => validateSpace(raw).map((e) => `${e.field}:${e.code}`);

describe('validateSpace', () => {
  it('accepts the issue example with a conditional parameter', () => {
    expect(
      validateSpace({
        lr: { type: 'float', low: 1.0e-4, high: 0.1, log: true },
        layers: { type: 'int', low: 1, high: 4 },
        act: { type: 'categorical', choices: ['relu', 'tanh'] },
        slope: { type: 'float', low: 0, high: 0.3, step: 0.01, when: { act: 'relu' } },
        width: { type: 'int', low: 8, high: 512, log: true, when: { layers: [2, 3, 4] } },
      }),
    ).toEqual([]);
  });

  it('names the field of every mistake', () => {
    expect(fields([])).toEqual(['parameters:INVALID_TYPE']);
    expect(fields({})).toEqual(['parameters:REQUIRED']);
    expect(fields({ lr: { type: 'float', high: 1 } })).toEqual(['parameters.lr.low:REQUIRED']);
    expect(fields({ lr: { type: 'float', low: 1, high: 1 } })).toEqual(['parameters.lr.high:OUT_OF_RANGE']);
    expect(fields({ lr: { type: 'float', low: 0, high: 1, log: true } })).toEqual([
      'parameters.lr.low:OUT_OF_RANGE',
    ]);
    expect(fields({ n: { type: 'int', low: 0.5, high: 3 } })).toEqual(['parameters.n.low:INVALID_TYPE']);
    expect(fields({ n: { type: 'int', low: 1, high: 9, step: 1.5 } })).toEqual([
      'parameters.n.step:INVALID_TYPE',
    ]);
    expect(fields({ n: { type: 'int', low: 1, high: 9, step: 2, log: true } })).toEqual([
      'parameters.n.step:INVALID_VALUE',
    ]);
    expect(fields({ x: { type: 'double', low: 0, high: 1 } })).toEqual(['parameters.x.type:INVALID_VALUE']);
    expect(fields({ x: { low: 0, high: 1 } })).toEqual(['parameters.x.type:REQUIRED']);
    expect(fields({ x: { type: 'float', low: 0, high: 1, choices: [1] } })).toEqual([
      'parameters.x.choices:UNKNOWN_FIELD',
    ]);
    expect(fields({ c: { type: 'categorical', choices: [] } })).toEqual([
      'parameters.c.choices:INVALID_LENGTH',
    ]);
    expect(fields({ c: { type: 'categorical', choices: ['a', 'a'] } })).toEqual([
      'parameters.c.choices.1:DUPLICATE',
    ]);
    expect(fields({ c: { type: 'categorical', choices: ['a', {}] } })).toEqual([
      'parameters.c.choices.1:INVALID_TYPE',
    ]);
    expect(fields({ 'bad name': { type: 'int', low: 1, high: 2 } })).toEqual([
      'parameters.bad name:INVALID_FORMAT',
    ]);
  });

  it('checks conditions against the parameters they name', () => {
    const act = { type: 'categorical', choices: ['relu', 'tanh'] };
    expect(fields({ act, s: { type: 'float', low: 0, high: 1, when: { nope: 'relu' } } })).toEqual([
      'parameters.s.when.nope:UNKNOWN_PARAMETER',
    ]);
    expect(fields({ act, s: { type: 'float', low: 0, high: 1, when: { act: 'gelu' } } })).toEqual([
      'parameters.s.when.act:INVALID_VALUE',
    ]);
    expect(fields({ act, s: { type: 'float', low: 0, high: 1, when: { act: ['relu', 'gelu'] } } })).toEqual([
      'parameters.s.when.act.1:INVALID_VALUE',
    ]);
    expect(fields({ s: { type: 'float', low: 0, high: 1, when: { s: 1 } } })).toEqual([
      'parameters.s.when.s:CYCLE',
    ]);
    expect(
      fields({
        a: { type: 'categorical', choices: [1, 2], when: { b: 1 } },
        b: { type: 'categorical', choices: [1, 2], when: { a: 1 } },
      }),
    ).toEqual(['parameters.a.when:CYCLE']);
  });

  it('uses the path it is given', () => {
    expect(validateSpace({ x: { type: 'float', low: 2, high: 1 } }, 'sweep.parameters')[0]?.field).toBe(
      'sweep.parameters.x.high',
    );
  });
});

describe('conditional activity', () => {
  const space: Space = {
    act: { type: 'categorical', choices: ['relu', 'tanh', 'gelu'] },
    slope: { type: 'float', low: 0, high: 1, when: { act: 'relu' } },
    // depends on a conditional parameter: active only when slope is, and only for one value
    mode: { type: 'categorical', choices: ['a', 'b'], when: { slope: [0, 1] } },
    gain: { type: 'float', low: 0, high: 1, when: { act: ['tanh', 'gelu'] } },
  };

  it('resolves single values, lists and chains', () => {
    expect(isActive(space, 'act', {})).toBe(true);
    expect(isActive(space, 'slope', { act: 'relu' })).toBe(true);
    expect(isActive(space, 'slope', { act: 'tanh' })).toBe(false);
    expect(isActive(space, 'gain', { act: 'gelu' })).toBe(true);
    expect(isActive(space, 'mode', { act: 'relu', slope: 1 })).toBe(true);
    expect(isActive(space, 'mode', { act: 'relu', slope: 0.5 })).toBe(false);
    // the parent's value is there but the parent itself is inactive
    expect(isActive(space, 'mode', { act: 'tanh', slope: 1 })).toBe(false);
  });

  it('orders parents first and prunes inactive values', () => {
    const order = dependencyOrder({
      b: { type: 'int', low: 0, high: 1, when: { a: 1 } },
      a: { type: 'int', low: 0, high: 1 },
    });
    expect(order).toEqual(['a', 'b']);
    expect(pruneInactive(space, { act: 'tanh', slope: 0.3, gain: 0.2, mode: 'a', other: 1 })).toEqual({
      act: 'tanh',
      gain: 0.2,
    });
  });
});

describe('unit scale', () => {
  it('maps log scales geometrically and rounds ints and steps', () => {
    const lr: NumericSpec = { type: 'float', low: 1e-4, high: 1e-2, log: true };
    expect(fromUnit(lr, 0.5)).toBeCloseTo(1e-3, 12);
    expect(toUnit(lr, 1e-3)).toBeCloseTo(0.5, 12);
    const n: NumericSpec = { type: 'int', low: 1, high: 4 };
    expect([0, 0.24, 0.26, 0.74, 0.76, 1].map((u) => fromUnit(n, u))).toEqual([1, 1, 2, 3, 4, 4]);
    const s: NumericSpec = { type: 'float', low: 0, high: 1, step: 0.1 };
    expect(fromUnit(s, 0.3)).toBe(0.3);
    expect(roundToSpec(s, 0.30000000000000004)).toBe(0.3);
    // a step that does not divide the range never overshoots high
    expect(roundToSpec({ type: 'int', low: 0, high: 10, step: 3 }, 10)).toBe(9);
  });

  it('always yields a legal value', () => {
    const spec = fc.oneof(
      fc
        .tuple(
          fc.integer({ min: -50, max: 50 }),
          fc.integer({ min: 0, max: 100 }),
          fc.option(fc.integer({ min: 1, max: 7 })),
        )
        .map(
          ([low, w, step]): NumericSpec => ({
            type: 'int',
            low,
            high: low + w,
            ...(step === null ? {} : { step }),
          }),
        ),
      fc
        .tuple(
          fc.double({ min: 1e-6, max: 10, noNaN: true }),
          fc.double({ min: 1.01, max: 1e4, noNaN: true }),
        )
        .map(([low, f]): NumericSpec => ({ type: 'float', low, high: low * f, log: true })),
      fc.tuple(fc.integer({ min: -100, max: 100 }), fc.integer({ min: 1, max: 40 })).map(
        ([low, k]): NumericSpec => ({
          type: 'float',
          low: low / 10,
          high: low / 10 + k * 0.25,
          step: 0.25,
        }),
      ),
    );
    fc.assert(
      fc.property(spec, fc.double({ min: -0.5, max: 1.5, noNaN: true }), (s, u) => {
        const v = fromUnit(s, u);
        expect(v).toBeGreaterThanOrEqual(s.low);
        expect(v).toBeLessThanOrEqual(s.high + 1e-12 * Math.max(1, Math.abs(s.high)));
        if (s.type === 'int') expect(Number.isInteger(v)).toBe(true);
        if (s.step !== undefined) {
          const k = (v - s.low) / s.step;
          expect(Math.abs(k - Math.round(k))).toBeLessThan(1e-9);
        }
        // toUnit is a left inverse on legal values
        expect(fromUnit(s, toUnit(s, v))).toBeCloseTo(v, 9);
      }),
    );
  });
});
