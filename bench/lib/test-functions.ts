/**
 * Test functions of the optimizer benchmark (minimised). The same definitions, domains and
 * noise stream live in bench/lib/optuna_anchor.py; keep the two in step.
 */

export interface TestFunction {
  name: string;
  dims: number;
  bounds: Array<[number, number]>;
  optimum: number;
  /** standard deviation of the Gaussian observation noise; 0 = noiseless */
  noise: number;
  f(x: readonly number[]): number;
}

function branin(x: readonly number[]): number {
  const [x1 = 0, x2 = 0] = x;
  const b = 5.1 / (4 * Math.PI ** 2);
  const c = 5 / Math.PI;
  const t = 1 / (8 * Math.PI);
  return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
}

const H_A = [
  [10, 3, 17, 3.5, 1.7, 8],
  [0.05, 10, 17, 0.1, 8, 14],
  [3, 3.5, 1.7, 10, 17, 8],
  [17, 8, 0.05, 10, 0.1, 14],
];
const H_P = [
  [1312, 1696, 5569, 124, 8283, 5886],
  [2329, 4135, 8307, 3736, 1004, 9991],
  [2348, 1451, 3522, 2883, 3047, 6650],
  [4047, 8828, 8732, 5743, 1091, 381],
];
const H_ALPHA = [1.0, 1.2, 3.0, 3.2];

function hartmann6(x: readonly number[]): number {
  let total = 0;
  for (let i = 0; i < 4; i++) {
    let inner = 0;
    for (let j = 0; j < 6; j++) inner += (H_A[i]?.[j] ?? 0) * ((x[j] ?? 0) - 1e-4 * (H_P[i]?.[j] ?? 0)) ** 2;
    total -= (H_ALPHA[i] ?? 0) * Math.exp(-inner);
  }
  return total;
}

function rosenbrock(x: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < x.length - 1; i++)
    s += 100 * ((x[i + 1] ?? 0) - (x[i] ?? 0) ** 2) ** 2 + (1 - (x[i] ?? 0)) ** 2;
  return s;
}

function ackley(x: readonly number[]): number {
  const d = x.length;
  let s1 = 0;
  let s2 = 0;
  for (const v of x) {
    s1 += v * v;
    s2 += Math.cos(2 * Math.PI * v);
  }
  return -20 * Math.exp(-0.2 * Math.sqrt(s1 / d)) - Math.exp(s2 / d) + 20 + Math.E;
}

export const TEST_FUNCTIONS: Record<string, TestFunction> = {
  branin: {
    name: 'branin',
    dims: 2,
    bounds: [
      [-5, 10],
      [0, 15],
    ],
    optimum: 0.397887357729738,
    noise: 0,
    f: branin,
  },
  hartmann6: {
    name: 'hartmann6',
    dims: 6,
    bounds: Array.from({ length: 6 }, () => [0, 1] as [number, number]),
    optimum: -3.32236801141551,
    noise: 0,
    f: hartmann6,
  },
  rosenbrock4: {
    name: 'rosenbrock4',
    dims: 4,
    bounds: Array.from({ length: 4 }, () => [-5, 10] as [number, number]),
    optimum: 0,
    noise: 0,
    f: rosenbrock,
  },
  ackley5: {
    name: 'ackley5',
    dims: 5,
    bounds: Array.from({ length: 5 }, () => [-32.768, 32.768] as [number, number]),
    optimum: 0,
    noise: 0,
    f: ackley,
  },
  hartmann6_noisy: {
    name: 'hartmann6_noisy',
    dims: 6,
    bounds: Array.from({ length: 6 }, () => [0, 1] as [number, number]),
    optimum: -3.32236801141551,
    noise: 0.1,
    f: hartmann6,
  },
};

function mix32(z0: number): number {
  let z = (z0 + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** N(0, sigma²) from (seed, trial number) only, identical to the Python side. */
export function noise(seed: number, number: number, sigma: number): number {
  const a = mix32(Number((BigInt(seed) * 1000003n + BigInt(number) * 2n + 1n) & 0xffffffffn));
  const b = mix32((a ^ 0x5bd1e995) >>> 0);
  const u1 = (a + 0.5) / 4294967296;
  const u2 = (b + 0.5) / 4294967296;
  return sigma * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}
