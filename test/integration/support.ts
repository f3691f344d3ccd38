/**
 * Shared pieces of the integration suites: one suite definition run per dialect, a controller
 * per test (closed after it), the agent protocol driven by hand, and waits that fail fast.
 */
import { afterEach, describe } from 'vitest';
import { ApiError, type RunplaneClient } from '../../src/client/client.js';
import type { JobState } from '../../src/jobs/model.js';
import type { Assignment, JobView, PollResponse } from '../../src/jobs/schemas.js';
import { eventually, startTestController, type TestController } from '../helpers/controller.js';
import { serviceAvailable } from '../helpers/services.js';
import type { DialectUnderTest } from '../helpers/store.js';

export const pgOk = await serviceAvailable('postgres');

/** Defines a suite once per dialect: always on SQLite, on Postgres when it is reachable. */
export function forEachDialect(define: (dialect: DialectUnderTest) => void): void {
  describe('sqlite', () => define('sqlite'));
  describe.skipIf(!pgOk)('postgres', () => define('postgres'));
}

type Overrides = Parameters<typeof startTestController>[1];
type Deps = Parameters<typeof startTestController>[2];

/** Returns a starter of controllers over fresh databases; every one started is closed after its test. */
export function controllers(
  dialect: DialectUnderTest,
): (overrides?: Overrides, deps?: Deps) => Promise<TestController> {
  const open: TestController[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });
  return async (overrides = {}, deps = {}) => {
    const t = await startTestController(dialect, { killGraceMs: '1s', ...overrides }, deps);
    open.push(t);
    return t;
  };
}

/** Runs a request that must fail and returns its ApiError. */
export async function rejected(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('expected the request to be rejected, but it succeeded');
}

const TERMINAL = new Set<JobState>(['SUCCEEDED', 'FAILED', 'KILLED', 'WORKER_FAILED', 'UNSCHEDULABLE']);

/** Waits for a job to reach `state`; fails at once if it ends in another terminal state. */
export async function waitForState(
  client: RunplaneClient,
  jobId: string,
  state: JobState,
  timeoutMs = 20_000,
): Promise<JobView> {
  let ended: JobView | null = null;
  const job = await eventually(async () => {
    const j = await client.getJob(jobId);
    if (j.state === state) return j;
    if (TERMINAL.has(j.state)) {
      ended = j;
      return j;
    }
    return undefined;
  }, timeoutMs);
  if (ended) throw new Error(`job ${jobId} ended ${job.state}, expected ${state}: ${JSON.stringify(job)}`);
  return job;
}

/** One complete scheduling pass now (retried while another pass holds the leader lock). */
export async function schedulingPass(t: TestController): Promise<void> {
  await eventually(async () => (await t.ctl.scheduler.pass()) !== null);
}

/** Row counts that a rejected request must leave unchanged. */
export async function storeCounts(
  t: TestController,
): Promise<{ jobs: number; events: number; endpoints: number }> {
  const db = t.ctl.store.db;
  const count = async (table: 'jobs' | 'events' | 'endpoints') =>
    Number(
      (
        await db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return { jobs: await count('jobs'), events: await count('events'), endpoints: await count('endpoints') };
}

/**
 * A worker driven by hand over the HTTP agent protocol (register, poll, report), so a test
 * decides when each attempt starts and ends. It never heartbeats unless told to.
 */
export class ManualWorker {
  private constructor(
    readonly client: RunplaneClient,
    readonly id: string,
    readonly name: string,
  ) {}

  static async register(
    t: TestController,
    name: string,
    capacity: { cpu: number; memory_mb?: number; gpu?: number },
    client?: RunplaneClient,
  ): Promise<ManualWorker> {
    const c = client ?? (await t.as('worker'));
    const r = await c.registerWorker({
      name,
      capacity: { cpu: capacity.cpu, memory_mb: capacity.memory_mb ?? 100_000, gpu: capacity.gpu ?? 0 },
    });
    return new ManualWorker(c, r.worker_id, name);
  }

  /** One poll that returns at once. */
  poll(known: string[] = []): Promise<PollResponse> {
    return this.client.poll(this.id, known, 0);
  }

  /** Polls until at least `n` assignments have come back (in total across polls). */
  async assignments(n: number, known: string[] = []): Promise<Assignment[]> {
    const got = new Map<string, Assignment>();
    await eventually(async () => {
      for (const a of (await this.poll(known)).assignments) got.set(a.attempt_id, a);
      return got.size >= n;
    });
    return [...got.values()];
  }

  report(
    attempt_id: string,
    state: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'KILLED' | 'WORKER_FAILED',
    exit_code?: number,
  ) {
    return this.client.report(this.id, {
      updates: [{ attempt_id, state, ...(exit_code === undefined ? {} : { exit_code }) }],
    });
  }

  heartbeat(): Promise<null> {
    return this.client.workerHeartbeat(this.id);
  }
}
