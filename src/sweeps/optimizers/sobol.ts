/**
 * Quasi-random search with a Sobol sequence: trial n takes point n, so the first 2^k trials
 * stratify every parameter into 2^k equal slices. Direction numbers: Joe & Kuo (2008) for the
 * first 21 dimensions, then further primitive polynomials with seeded odd initial numbers.
 * Scrambled by default (seeded linear matrix scrambling plus a digital shift), which keeps the
 * stratification and makes each seed a different, equally uniform sequence.
 */
import { dependencyOrder, isActive, type ParamSpec, type Params, type Space } from '../space.js';
import { seedOf, valueFromUnit } from './common.js';
import { readOptions } from './options.js';
import { Rng } from './rng.js';
import type { Optimizer, OptimizerSpec } from './types.js';

const BITS = 32;

/** [degree s, polynomial a, initial m_1..m_s] for dimensions 2..21 (new-joe-kuo-6.21201). */
export const JOE_KUO: ReadonlyArray<readonly [number, number, readonly number[]]> = [
  [1, 0, [1]],
  [2, 1, [1, 3]],
  [3, 1, [1, 3, 1]],
  [3, 2, [1, 1, 1]],
  [4, 1, [1, 1, 3, 3]],
  [4, 4, [1, 3, 5, 13]],
  [5, 2, [1, 1, 5, 5, 17]],
  [5, 4, [1, 1, 5, 5, 5]],
  [5, 7, [1, 1, 7, 11, 19]],
  [5, 11, [1, 1, 5, 1, 1]],
  [5, 13, [1, 1, 1, 3, 11]],
  [5, 14, [1, 3, 5, 5, 31]],
  [6, 1, [1, 3, 3, 9, 7, 49]],
  [6, 13, [1, 1, 1, 15, 21, 21]],
  [6, 16, [1, 3, 1, 13, 27, 49]],
  [6, 19, [1, 1, 1, 15, 7, 5]],
  [6, 22, [1, 3, 1, 15, 13, 25]],
  [6, 25, [1, 1, 5, 5, 19, 61]],
  [7, 1, [1, 3, 7, 11, 23, 15, 103]],
  [7, 4, [1, 3, 7, 13, 13, 15, 69]],
];

/** More dimensions than any sensible search space has. */
export const MAX_SOBOL_DIMENSIONS = 1000;

/** Primitive polynomials over GF(2) as [degree, a], ordered by degree then a (Joe–Kuo order). */
export function primitivePolynomials(count: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let s = 1; out.length < count && s <= 20; s++) {
    for (let a = 0; a < 1 << (s - 1) && out.length < count; a++) {
      // Bits: x^s + a_1 x^{s-1} + ... + a_{s-1} x + 1.
      const poly = (1 << s) | (a << 1) | 1;
      if (isPrimitive(poly, s)) out.push([s, a]);
    }
  }
  return out;
}

function mulMod(x: number, y: number, poly: number, s: number): number {
  let r = 0;
  let a = x;
  let b = y;
  while (b !== 0) {
    if (b & 1) r ^= a;
    b >>>= 1;
    a <<= 1;
    if (a & (1 << s)) a ^= poly;
  }
  return r;
}

function powMod(base: number, e: number, poly: number, s: number): number {
  let r = 1;
  let b = base;
  let k = e;
  while (k > 0) {
    if (k % 2 === 1) r = mulMod(r, b, poly, s);
    b = mulMod(b, b, poly, s);
    k = Math.floor(k / 2);
  }
  return r;
}

/** x has order 2^s − 1 modulo the polynomial: the polynomial is primitive. */
function isPrimitive(poly: number, s: number): boolean {
  const order = 2 ** s - 1;
  const x = s === 1 ? 1 : 2; // modulo x+1, x ≡ 1
  if (powMod(x, order, poly, s) !== 1) return false;
  for (const q of primeFactors(order)) if (powMod(x, order / q, poly, s) === 1) return false;
  return true;
}

function primeFactors(n: number): number[] {
  const out: number[] = [];
  let m = n;
  for (let p = 2; p * p <= m; p++) {
    if (m % p === 0) {
      out.push(p);
      while (m % p === 0) m /= p;
    }
  }
  if (m > 1) out.push(m);
  return out;
}

/** Direction numbers v_1..v_32 (as 32-bit integers) of each dimension. */
export function directionNumbers(dims: number): Uint32Array[] {
  if (dims > MAX_SOBOL_DIMENSIONS)
    throw new Error(`sobol supports at most ${MAX_SOBOL_DIMENSIONS} parameters`);
  const out: Uint32Array[] = [];
  const first = new Uint32Array(BITS);
  for (let k = 0; k < BITS; k++) first[k] = 2 ** (BITS - 1 - k);
  out.push(first);
  const polys = primitivePolynomials(dims - 1);
  const extra = new Rng(0x50b01);
  for (let j = 1; j < dims; j++) {
    const [s, a] = polys[j - 1] as [number, number];
    const known = JOE_KUO[j - 1];
    const m: number[] = [];
    for (let k = 0; k < s; k++) {
      // Any odd m_k < 2^k gives a valid Sobol dimension; past the table they are drawn once.
      m.push(known !== undefined ? (known[2][k] as number) : 2 * extra.int(2 ** k) + 1);
    }
    for (let k = s; k < BITS; k++) {
      let next = m[k - s] as number;
      next ^= (m[k - s] as number) * 2 ** s;
      for (let i = 1; i < s; i++) {
        if ((a >>> (s - 1 - i)) & 1) next ^= (m[k - i] as number) * 2 ** i;
      }
      m.push(next);
    }
    const v = new Uint32Array(BITS);
    for (let k = 0; k < BITS; k++) v[k] = ((m[k] as number) * 2 ** (BITS - 1 - k)) >>> 0;
    out.push(v);
  }
  return out;
}

/** Applies a random lower-triangular binary matrix (unit diagonal) to a 32-digit fraction. */
function scrambleMatrix(rng: Rng): Uint32Array {
  // Row r (digit r, most significant first) as a bit mask over input digits 0..r.
  const rows = new Uint32Array(BITS);
  for (let r = 0; r < BITS; r++) {
    const below = r === 0 ? 0 : (rng.nextU32() >>> (BITS - r)) << (BITS - r);
    rows[r] = (below | (1 << (BITS - 1 - r))) >>> 0;
  }
  return rows;
}

function applyMatrix(rows: Uint32Array, x: number): number {
  let out = 0;
  for (let r = 0; r < BITS; r++) {
    let bits = (rows[r] as number) & x;
    bits ^= bits >>> 16;
    bits ^= bits >>> 8;
    bits ^= bits >>> 4;
    bits ^= bits >>> 2;
    bits ^= bits >>> 1;
    if (bits & 1) out |= 1 << (BITS - 1 - r);
  }
  return out >>> 0;
}

export class SobolSequence {
  private readonly v: Uint32Array[];
  private readonly shift: Uint32Array;

  constructor(dims: number, scramble: boolean, seed: number) {
    const base = directionNumbers(Math.max(1, dims));
    const rng = Rng.for(seed, 'sobol-scramble');
    this.shift = new Uint32Array(base.length);
    this.v = base.map((v, j) => {
      if (!scramble) return v;
      const rows = scrambleMatrix(rng);
      this.shift[j] = rng.nextU32();
      return v.map((x) => applyMatrix(rows, x));
    });
  }

  /** Point `index` (0-based) in [0, 1)^dims. */
  point(index: number): number[] {
    return this.v.map((v, j) => {
      let x = this.shift[j] as number;
      let n = index;
      for (let k = 0; n > 0 && k < BITS; k++, n = Math.floor(n / 2)) if (n % 2 === 1) x ^= v[k] as number;
      return ((x >>> 0) + 0.5) / 2 ** BITS;
    });
  }
}

export function createSobol(spec: OptimizerSpec, space: Space): Optimizer {
  const opts = readOptions('sobol', spec);
  const order = dependencyOrder(space);
  const seq = new SobolSequence(order.length, opts.scramble, seedOf(spec));
  return {
    size: null,
    suggest(number: number): Params {
      const u = seq.point(Math.max(0, number));
      const out: Params = {};
      order.forEach((name, j) => {
        if (isActive(space, name, out)) out[name] = valueFromUnit(space[name] as ParamSpec, u[j] as number);
      });
      return out;
    },
  };
}
