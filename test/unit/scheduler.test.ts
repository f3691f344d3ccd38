import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Resources } from '../../src/jobs/model.js';
import {
  decidePlacements,
  type PassResult,
  type PendingJob,
  type WorkerSlot,
} from '../../src/jobs/scheduler.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const EPS = 1e-9;

function res(cpu: number, memory_mb = 0, gpu = 0, device_type: string | null = null): Resources {
  return { cpu, memory_mb, gpu, device_type };
}

function job(
  id: string,
  seq: number,
  resources: Resources,
  gang: { id: string; required: number } | null = null,
): PendingJob {
  return { id, seq, resources, gang };
}

function worker(
  id: string,
  cpu: number,
  memory_mb = 100_000,
  gpu = 0,
  device_type: string | null = null,
  healthy = true,
): WorkerSlot {
  return { id, healthy, device_type, free: { cpu, memory_mb, gpu } };
}

type Free = { cpu: number; memory_mb: number; gpu: number };

function fitsOn(r: Resources, free: Free, deviceType: string | null): boolean {
  return (
    (r.device_type === null || r.device_type === deviceType) &&
    r.cpu <= free.cpu + EPS &&
    r.memory_mb <= free.memory_mb &&
    r.gpu <= free.gpu
  );
}

/** job id -> worker id */
function byJob(result: PassResult): Map<string, string> {
  return new Map(result.placements.map((p) => [p.job_id, p.worker_id]));
}

/** Free capacity left on each worker after the pass, subtracting in placement order. */
function remaining(jobs: readonly PendingJob[], workers: readonly WorkerSlot[], result: PassResult) {
  const jobById = new Map(jobs.map((j) => [j.id, j]));
  const left = new Map<string, Free>(workers.map((w) => [w.id, { ...w.free }]));
  for (const p of result.placements) {
    const r = jobById.get(p.job_id)!.resources;
    const f = left.get(p.worker_id)!;
    f.cpu -= r.cpu;
    f.memory_mb -= r.memory_mb;
    f.gpu -= r.gpu;
  }
  return left;
}

/**
 * Straightforward O(jobs x workers) reading of the rules, used as an oracle for the indexed
 * implementation.
 */
function referencePlacements(jobs: readonly PendingJob[], workers: readonly WorkerSlot[]): PassResult {
  const order = [...jobs].sort((a, b) => a.seq - b.seq);
  const free = workers.map((w) => ({ ...w.free }));
  const placements: { job_id: string; worker_id: string }[] = [];
  const firstFit = (r: Resources): number =>
    workers.findIndex((w, i) => w.healthy && fitsOn(r, free[i]!, w.device_type));
  const take = (i: number, r: Resources) => {
    const f = free[i]!;
    f.cpu -= r.cpu;
    f.memory_mb -= r.memory_mb;
    f.gpu -= r.gpu;
  };
  const seenGangs = new Set<string>();
  for (const j of order) {
    if (j.gang === null) {
      const i = firstFit(j.resources);
      if (i >= 0) {
        take(i, j.resources);
        placements.push({ job_id: j.id, worker_id: workers[i]!.id });
      }
      continue;
    }
    if (seenGangs.has(j.gang.id)) continue;
    seenGangs.add(j.gang.id);
    const members = order.filter((m) => m.gang?.id === j.gang?.id);
    if (members.length < j.gang.required) continue;
    const saved = free.map((f) => ({ ...f }));
    const tentative: { job_id: string; worker_id: string }[] = [];
    let ok = true;
    for (const m of members.slice(0, j.gang.required)) {
      const i = firstFit(m.resources);
      if (i < 0) {
        ok = false;
        break;
      }
      take(i, m.resources);
      tentative.push({ job_id: m.id, worker_id: workers[i]!.id });
    }
    if (ok) placements.push(...tentative);
    else {
      saved.forEach((f, i) => {
        Object.assign(free[i]!, f);
      });
    }
  }
  return { placements, skipped: jobs.length - placements.length };
}

// ---------------------------------------------------------------------------------------------
// Unit tests
// ---------------------------------------------------------------------------------------------

describe('decidePlacements — first-fit basics', () => {
  it('places jobs in FIFO order (by seq, input unsorted) on the first worker that fits', () => {
    const workers = [worker('w1', 2), worker('w2', 4)];
    const jobs = [job('c', 3, res(1)), job('a', 1, res(1)), job('b', 2, res(1))];
    const result = decidePlacements(jobs, workers);
    expect(result.placements).toEqual([
      { job_id: 'a', worker_id: 'w1' },
      { job_id: 'b', worker_id: 'w1' },
      { job_id: 'c', worker_id: 'w2' },
    ]);
    expect(result.skipped).toBe(0);
  });

  it('returns nothing for no jobs or no workers', () => {
    expect(decidePlacements([], [worker('w1', 4)])).toEqual({ placements: [], skipped: 0 });
    expect(decidePlacements([job('a', 1, res(1))], [])).toEqual({ placements: [], skipped: 1 });
  });

  it('skips a job that fits nowhere without blocking smaller jobs behind it', () => {
    const workers = [worker('w1', 4), worker('w2', 4)];
    const jobs = [job('big', 1, res(8)), job('s1', 2, res(2)), job('s2', 3, res(2))];
    const result = decidePlacements(jobs, workers);
    expect(byJob(result)).toEqual(
      new Map([
        ['s1', 'w1'],
        ['s2', 'w1'],
      ]),
    );
    expect(result.skipped).toBe(1);
  });

  it('counts capacity handed out earlier in the same pass', () => {
    const workers = [worker('w1', 4, 1000), worker('w2', 4, 1000)];
    const jobs = [
      job('a', 1, res(3, 100)),
      job('b', 2, res(2, 100)),
      job('c', 3, res(2, 850)),
      job('d', 4, res(1, 100)),
      job('e', 5, res(0.5, 100)),
    ];
    const result = decidePlacements(jobs, workers);
    // a leaves w1 with 1 cpu, so b and c move on to w2 (which c fills); d takes w1's last cpu;
    // e then fits nowhere although both workers started with plenty.
    expect(byJob(result)).toEqual(
      new Map([
        ['a', 'w1'],
        ['b', 'w2'],
        ['c', 'w2'],
        ['d', 'w1'],
      ]),
    );
    expect(result.skipped).toBe(1);
  });

  it('checks memory and gpu as well as cpu', () => {
    const workers = [worker('w1', 8, 512, 0), worker('w2', 8, 4096, 1)];
    const jobs = [job('mem', 1, res(1, 1024)), job('gpu', 2, res(1, 0, 1)), job('gpu2', 3, res(1, 0, 1))];
    const result = decidePlacements(jobs, workers);
    expect(byJob(result)).toEqual(
      new Map([
        ['mem', 'w2'],
        ['gpu', 'w2'],
      ]),
    );
    expect(result.skipped).toBe(1);
  });

  it('gives nothing to an unhealthy worker', () => {
    const workers = [worker('sick', 64, 100_000, 8, null, false), worker('ok', 1)];
    const result = decidePlacements([job('a', 1, res(1)), job('b', 2, res(1))], workers);
    expect(result.placements).toEqual([{ job_id: 'a', worker_id: 'ok' }]);
    expect(result.skipped).toBe(1);
  });

  it('matches device_type; a null device_type runs anywhere', () => {
    const workers = [
      worker('cpu', 8),
      worker('v100', 8, 100_000, 4, 'v100'),
      worker('a100', 8, 100_000, 4, 'a100'),
    ];
    const jobs = [
      job('needs-a100', 1, res(1, 0, 1, 'a100')),
      job('any', 2, res(1)),
      job('needs-h100', 3, res(1, 0, 1, 'h100')),
      job('any-gpu', 4, res(1, 0, 1)),
    ];
    const result = decidePlacements(jobs, workers);
    expect(byJob(result)).toEqual(
      new Map([
        ['needs-a100', 'a100'],
        ['any', 'cpu'],
        ['any-gpu', 'v100'],
      ]),
    );
    expect(result.skipped).toBe(1);
  });

  it('tolerates float cpu sums (0.1 + 0.2 fits in 0.3)', () => {
    const workers = [worker('w1', 0.3)];
    const result = decidePlacements(
      [job('a', 1, res(0.1)), job('b', 2, res(0.2)), job('c', 3, res(0.1))],
      workers,
    );
    expect(byJob(result)).toEqual(
      new Map([
        ['a', 'w1'],
        ['b', 'w1'],
      ]),
    );
    expect(decidePlacements([job('x', 1, res(0.1 + 0.2))], workers).placements).toHaveLength(1);
  });

  it('places a repeated job id at most once (its earliest entry)', () => {
    const workers = [worker('w1', 8)];
    const result = decidePlacements([job('a', 2, res(1)), job('a', 1, res(2))], workers);
    expect(result.placements).toEqual([{ job_id: 'a', worker_id: 'w1' }]);
    expect(result.skipped).toBe(1);
  });

  it('does not mutate its inputs', () => {
    const workers = [worker('w1', 2)];
    const jobs = [job('b', 2, res(1)), job('a', 1, res(1))];
    const before = structuredClone({ jobs, workers });
    decidePlacements(jobs, workers);
    expect({ jobs, workers }).toEqual(before);
  });
});

describe('decidePlacements — gangs', () => {
  const gang = (id: string, required: number) => ({ id, required });

  it('places a gang that fits, all members at the position of its earliest member', () => {
    const workers = [worker('w1', 4)];
    const jobs = [
      job('g-a', 1, res(1), gang('g', 2)),
      job('solo', 2, res(2)),
      job('g-b', 3, res(1), gang('g', 2)),
      job('late', 4, res(1)),
    ];
    const result = decidePlacements(jobs, workers);
    expect(result.placements.map((p) => p.job_id)).toEqual(['g-a', 'g-b', 'solo']);
    expect(result.skipped).toBe(1);
  });

  it('places none when one member cannot fit, leaving the capacity to later jobs', () => {
    const workers = [worker('w1', 4), worker('w2', 4)];
    const jobs = [
      job('g-a', 1, res(4), gang('g', 3)),
      job('g-b', 2, res(4), gang('g', 3)),
      job('g-c', 3, res(4), gang('g', 3)),
      job('x', 4, res(4)),
      job('y', 5, res(4)),
    ];
    const result = decidePlacements(jobs, workers);
    expect(byJob(result)).toEqual(
      new Map([
        ['x', 'w1'],
        ['y', 'w2'],
      ]),
    );
    expect(result.skipped).toBe(3);
  });

  it('rolls back float capacity exactly', () => {
    const workers = [worker('w1', 0.3)];
    const jobs = [
      job('g-a', 1, res(0.1), gang('g', 2)),
      job('g-b', 2, res(0.5), gang('g', 2)),
      job('x', 3, res(0.3)),
    ];
    expect(decidePlacements(jobs, workers).placements).toEqual([{ job_id: 'x', worker_id: 'w1' }]);
  });

  it('does not place a gang with fewer pending members than required', () => {
    const workers = [worker('w1', 64)];
    const jobs = [
      job('g-a', 1, res(1), gang('g', 3)),
      job('g-b', 2, res(1), gang('g', 3)),
      job('x', 3, res(1)),
    ];
    const result = decidePlacements(jobs, workers);
    expect(result.placements).toEqual([{ job_id: 'x', worker_id: 'w1' }]);
    expect(result.skipped).toBe(2);
  });

  it('places only the first `required` members (by seq) when more are pending', () => {
    const workers = [worker('w1', 64)];
    const jobs = [
      job('g-c', 3, res(1), gang('g', 2)),
      job('g-a', 1, res(1), gang('g', 2)),
      job('g-b', 2, res(1), gang('g', 2)),
    ];
    const result = decidePlacements(jobs, workers);
    expect(result.placements.map((p) => p.job_id)).toEqual(['g-a', 'g-b']);
    expect(result.skipped).toBe(1);
  });

  it('spreads gang members over workers first-fit', () => {
    const workers = [worker('w1', 2), worker('w2', 2), worker('w3', 2)];
    const jobs = [1, 2, 3].map((i) => job(`g-${i}`, i, res(2), gang('g', 3)));
    expect(byJob(decidePlacements(jobs, workers))).toEqual(
      new Map([
        ['g-1', 'w1'],
        ['g-2', 'w2'],
        ['g-3', 'w3'],
      ]),
    );
  });

  it('counts the capacity a gang takes for the jobs behind it', () => {
    const workers = [worker('w1', 3)];
    const jobs = [
      job('g-a', 1, res(1), gang('g', 2)),
      job('g-b', 2, res(1), gang('g', 2)),
      job('x', 3, res(2)),
    ];
    const result = decidePlacements(jobs, workers);
    expect(result.placements.map((p) => p.job_id)).toEqual(['g-a', 'g-b']);
  });
});

describe('decidePlacements — large pass', () => {
  // Correctness only: no timing assertions in tests.
  it('handles 100k jobs x 1k workers (uniform jobs, memory-bound)', () => {
    const workers = Array.from({ length: 1000 }, (_, i) => worker(`w${i}`, 8, 2048, 0, null, i % 10 !== 0));
    // seq is a permutation of 0..99999 so input is not sorted (7919 is coprime with 100000).
    const jobs = Array.from({ length: 100_000 }, (_, i) => job(`j${i}`, (i * 7919) % 100_000, res(1, 512)));
    const result = decidePlacements(jobs, workers);

    // 900 healthy workers x 4 jobs (2048 / 512 MB) each, given to the 3600 earliest jobs.
    expect(result.placements).toHaveLength(3600);
    expect(result.skipped).toBe(100_000 - 3600);
    const seqOf = new Map(jobs.map((j) => [j.id, j.seq]));
    const placedSeqs = result.placements.map((p) => seqOf.get(p.job_id)!).sort((a, b) => a - b);
    expect(placedSeqs).toEqual(Array.from({ length: 3600 }, (_, i) => i));
    const perWorker = new Map<string, number>();
    for (const p of result.placements) perWorker.set(p.worker_id, (perWorker.get(p.worker_id) ?? 0) + 1);
    expect(perWorker.size).toBe(900);
    expect([...perWorker.values()].every((n) => n === 4)).toBe(true);
    expect(perWorker.has('w0')).toBe(false);
  });

  it('handles 100k mixed jobs x 1k heterogeneous workers like the reference on a slice', () => {
    const devices = [null, 'a100', 'h100'];
    const workers = Array.from({ length: 1000 }, (_, i) =>
      i % 2 === 0
        ? worker(`w${i}`, 64, 1024, i % 3, devices[i % 3]!, i % 17 !== 0)
        : worker(`w${i}`, 2, 65536, 0, devices[i % 3]!, i % 17 !== 0),
    );
    const jobs = Array.from({ length: 100_000 }, (_, i) =>
      job(
        `j${i}`,
        i,
        // Many of these need lots of cpu AND memory, which no single worker has.
        res(
          1 + (i % 4),
          i % 5 === 0 ? 8192 : 256,
          i % 7 === 0 ? 1 : 0,
          i % 11 === 0 ? devices[i % 3]! : null,
        ),
        i % 13 === 0 ? { id: `g${Math.floor(i / 130)}`, required: 3 } : null,
      ),
    );
    const result = decidePlacements(jobs, workers);
    const left = remaining(jobs, workers, result);
    for (const w of workers) {
      const f = left.get(w.id)!;
      expect(f.cpu).toBeGreaterThanOrEqual(-EPS);
      expect(f.memory_mb).toBeGreaterThanOrEqual(0);
      expect(f.gpu).toBeGreaterThanOrEqual(0);
    }
    expect(new Set(result.placements.map((p) => p.job_id)).size).toBe(result.placements.length);
    expect(result.placements.length + result.skipped).toBe(jobs.length);
    expect(result.placements.length).toBeGreaterThan(0);
    // The naive reference is too slow for all 100k jobs; compare on the first 5k.
    const head = jobs.slice(0, 5000);
    expect(decidePlacements(head, workers)).toEqual(referencePlacements(head, workers));
  });
});

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

const DEVICES = [null, 'a100', 'h100'] as const;
const GANG_IDS = ['g1', 'g2', 'g3'] as const;

const resourcesArb: fc.Arbitrary<Resources> = fc.record({
  // Tenths of a cpu, to exercise float sums.
  cpu: fc.integer({ min: 0, max: 40 }).map((t) => t / 10),
  memory_mb: fc.integer({ min: 0, max: 8 }).map((m) => m * 512),
  gpu: fc.integer({ min: 0, max: 3 }),
  device_type: fc.constantFrom(...DEVICES),
});

/** Jobs with unique ids, arbitrary (possibly repeated) seqs and gangs of consistent `required`. */
const jobsArb: fc.Arbitrary<PendingJob[]> = fc
  .tuple(
    fc.array(
      fc.record({
        seq: fc.integer({ min: 0, max: 60 }),
        resources: resourcesArb,
        gang: fc.option(fc.constantFrom(...GANG_IDS), { freq: 3 }),
      }),
      { maxLength: 40 },
    ),
    fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })),
  )
  .map(([specs, required]) =>
    specs.map((s, i) => ({
      id: `j${i}`,
      seq: s.seq,
      resources: s.resources,
      gang: s.gang === null ? null : { id: s.gang, required: required[GANG_IDS.indexOf(s.gang)]! },
    })),
  );

const workersArb: fc.Arbitrary<WorkerSlot[]> = fc
  .array(
    fc.record({
      healthy: fc.integer({ min: 0, max: 3 }).map((n) => n > 0), // mostly healthy
      device_type: fc.constantFrom(...DEVICES),
      free: fc.record({
        cpu: fc.integer({ min: 0, max: 80 }).map((t) => t / 10),
        memory_mb: fc.integer({ min: 0, max: 16 }).map((m) => m * 512),
        gpu: fc.integer({ min: 0, max: 4 }),
      }),
    }),
    { maxLength: 8 },
  )
  .map((ws) => ws.map((w, i) => ({ id: `w${i}`, ...w })));

const inputArb = fc.tuple(jobsArb, workersArb);

describe('decidePlacements — properties', () => {
  it('never over-commits a worker in any dimension', () => {
    fc.assert(
      fc.property(inputArb, ([jobs, workers]) => {
        const left = remaining(jobs, workers, decidePlacements(jobs, workers));
        for (const w of workers) {
          const f = left.get(w.id)!;
          expect(f.cpu).toBeGreaterThanOrEqual(-1e-6);
          expect(f.memory_mb).toBeGreaterThanOrEqual(0);
          expect(f.gpu).toBeGreaterThanOrEqual(0);
        }
      }),
    );
  });

  it('places each job at most once, on a healthy input worker, and accounts for every job', () => {
    fc.assert(
      fc.property(inputArb, ([jobs, workers]) => {
        const result = decidePlacements(jobs, workers);
        const jobIds = new Set(jobs.map((j) => j.id));
        const healthy = new Set(workers.filter((w) => w.healthy).map((w) => w.id));
        const placed = result.placements.map((p) => p.job_id);
        expect(new Set(placed).size).toBe(placed.length);
        for (const p of result.placements) {
          expect(jobIds.has(p.job_id)).toBe(true);
          expect(healthy.has(p.worker_id)).toBe(true);
        }
        expect(result.skipped).toBe(jobs.length - placed.length);
      }),
    );
  });

  it('places gangs all-or-nothing: 0 or `required` members', () => {
    fc.assert(
      fc.property(inputArb, ([jobs, workers]) => {
        const placed = byJob(decidePlacements(jobs, workers));
        for (const g of GANG_IDS) {
          const members = jobs.filter((j) => j.gang?.id === g);
          const first = members[0];
          if (first === undefined) continue;
          const count = members.filter((m) => placed.has(m.id)).length;
          expect([0, first.gang!.required]).toContain(count);
          if (members.length < first.gang!.required) expect(count).toBe(0);
        }
      }),
    );
  });

  it('skips a non-gang job only if it fits nowhere (even on the capacity left at the end)', () => {
    fc.assert(
      fc.property(inputArb, ([jobs, workers]) => {
        const result = decidePlacements(jobs, workers);
        const placed = byJob(result);
        const left = remaining(jobs, workers, result);
        for (const j of jobs) {
          if (j.gang !== null || placed.has(j.id)) continue;
          for (const w of workers) {
            if (w.healthy) expect(fitsOn(j.resources, left.get(w.id)!, w.device_type)).toBe(false);
          }
        }
      }),
    );
  });

  it('respects device_type', () => {
    fc.assert(
      fc.property(inputArb, ([jobs, workers]) => {
        const jobById = new Map(jobs.map((j) => [j.id, j]));
        const workerById = new Map(workers.map((w) => [w.id, w]));
        for (const p of decidePlacements(jobs, workers).placements) {
          const want = jobById.get(p.job_id)!.resources.device_type;
          if (want !== null) expect(workerById.get(p.worker_id)!.device_type).toBe(want);
        }
      }),
    );
  });

  it('is deterministic and does not mutate its inputs', () => {
    fc.assert(
      fc.property(inputArb, ([jobs, workers]) => {
        const before = structuredClone({ jobs, workers });
        const a = decidePlacements(jobs, workers);
        const b = decidePlacements(structuredClone(jobs), structuredClone(workers));
        expect(b).toEqual(a);
        expect({ jobs, workers }).toEqual(before);
      }),
    );
  });

  it('matches a naive first-fit reference exactly', () => {
    fc.assert(
      fc.property(inputArb, ([jobs, workers]) => {
        expect(decidePlacements(jobs, workers)).toEqual(referencePlacements(jobs, workers));
      }),
      { numRuns: 500 },
    );
  });
});
