import { sql } from 'kysely';
import pino from 'pino';
import { jobRepo, type NewJobRow } from '../src/jobs/job-repo.js';
import { newJobRow } from '../src/jobs/job-service.js';
import { decidePlacements, type PendingJob, type WorkerSlot } from '../src/jobs/scheduler.js';
import { freeSlots, SchedulerLoop } from '../src/jobs/scheduler-loop.js';
import { workerRepo } from '../src/jobs/worker-repo.js';
import { systemClock } from '../src/shared/clock.js';
import { newId } from '../src/shared/ids.js';
import type { Store } from '../src/store/database.js';
import type { WorkersTable } from '../src/store/schema.js';
import { type SlurmResult, type SpawnCeiling, slurmDrain, spawnCeiling } from './lib/anchors.js';
import { type Dialect, freshDb, PG_URL, percentile, pgReachable } from './lib/bench-db.js';
import type { ControllerStats } from './lib/controller-proc.js';
import { startControllerProcess } from './lib/controller-process.js';
import { LoadClient } from './lib/http-load.js';
import { parseFlags } from './lib/options.js';
import { type Cell, formatMarkdown, printTable } from './lib/table.js';
import {
  fmtPercent,
  fmtRate,
  fmtSeconds,
  machine,
  machineLine,
  mapLimit,
  nowMs,
  sleep,
} from './lib/timing.js';

const ADMIN_TOKEN = 'rp_bench_admin_token_0123456789abcdef';
const TARGET_E2E: Record<Dialect, number> = { sqlite: 0.5, postgres: 0.35 };
const TARGET_PASS_S: Record<Dialect, number> = { sqlite: 2, postgres: 4 };

export const usage = `npm run bench -- controller [options]
  --jobs N            no-op jobs end to end (default 2000)
  --workers K         embedded local workers (default 2)
  --slots S           slots (cpu) per worker; jobs take cpu 1, so K x S run at once (default 8)
  --dialect D         sqlite | postgres | both (default both)
  --concurrency C     concurrent launch requests of the load generator (default 32)
  --warmup W          jobs run to completion before the timed phase (default 100)
  --slurm-jobs M      jobs for the Slurm anchor (default min(jobs, 60): Slurm drains ~1 job/s here)
  --pass-jobs P       pending jobs of the scheduling pass (default 100000)
  --pass-workers Q    registered workers of the scheduling pass (default 1000)
  --skip-e2e          skip the end-to-end part (and its anchors)
  --skip-slurm        skip the Slurm anchor
  --skip-pass         skip the scheduling pass
  --profile DIR       run the controller with --cpu-prof, profiles written to DIR
  --trace             count and time the controller's store transactions and scheduling passes
  --built             run the built controller and workers (dist/, as \`npx runplane up\` does)
                      instead of src/ under tsx; dist/ must be up to date (npm run build)
  --markdown          also print the result table as markdown`;

interface Options {
  jobs: number;
  workers: number;
  slots: number;
  dialects: Dialect[];
  concurrency: number;
  warmup: number;
  slurmJobs: number;
  passJobs: number;
  passWorkers: number;
  skipE2e: boolean;
  skipSlurm: boolean;
  skipPass: boolean;
  profile: string | null;
  trace: boolean;
  built: boolean;
  markdown: boolean;
}

function parseOptions(argv: string[]): Options {
  const f = parseFlags(argv, {
    jobs: 'string',
    workers: 'string',
    slots: 'string',
    dialect: 'string',
    concurrency: 'string',
    warmup: 'string',
    'slurm-jobs': 'string',
    'pass-jobs': 'string',
    'pass-workers': 'string',
    'skip-e2e': 'boolean',
    'skip-slurm': 'boolean',
    'skip-pass': 'boolean',
    profile: 'string',
    trace: 'boolean',
    built: 'boolean',
    markdown: 'boolean',
  });
  const jobs = f.int('jobs', 2000);
  return {
    jobs,
    workers: f.int('workers', 2),
    slots: f.int('slots', 8),
    dialects: f.dialects('dialect', 'both'),
    concurrency: f.int('concurrency', 32),
    warmup: f.int('warmup', 100, 0),
    slurmJobs: f.int('slurm-jobs', Math.min(jobs, 60)),
    passJobs: f.int('pass-jobs', 100_000),
    passWorkers: f.int('pass-workers', 1000),
    skipE2e: f.bool('skip-e2e'),
    skipSlurm: f.bool('skip-slurm'),
    skipPass: f.bool('skip-pass'),
    profile: f.str('profile') ?? null,
    trace: f.bool('trace'),
    built: f.bool('built'),
    markdown: f.bool('markdown'),
  };
}

// ---------------------------------------------------------------------------------------------
// End to end

interface E2EResult {
  dialect: Dialect;
  n: number;
  /** first submit -> last SUCCEEDED */
  ms: number;
  rate: number;
  /** first submit -> last launch answered */
  submitMs: number;
  latencyP50: number;
  latencyP99: number;
  controller: ControllerStats;
}

async function counts(store: Store): Promise<Map<string, number>> {
  return new Map((await jobRepo.countByState(store.db)).map((r) => [r.state, r.n]));
}

/** Waits until `total` jobs are SUCCEEDED; fails fast on other terminal states or a stall. */
async function waitSucceeded(store: Store, total: number, stallMs = 60_000): Promise<void> {
  let last = -1;
  let lastChange = nowMs();
  for (;;) {
    const c = await counts(store);
    const ok = c.get('SUCCEEDED') ?? 0;
    const bad = ['FAILED', 'KILLED', 'UNSCHEDULABLE'].reduce((s, k) => s + (c.get(k) ?? 0), 0);
    if (bad > 0) throw new Error(`jobs ended badly: ${JSON.stringify(Object.fromEntries(c))}`);
    if (ok >= total) return;
    if (ok !== last) {
      last = ok;
      lastChange = nowMs();
    } else if (nowMs() - lastChange > stallMs) {
      throw new Error(`no progress for ${stallMs / 1000}s: ${JSON.stringify(Object.fromEntries(c))}`);
    }
    await sleep(ok / total > 0.95 ? 20 : 100);
  }
}

async function endToEnd(dialect: Dialect, o: Options): Promise<E2EResult> {
  const db = freshDb(dialect);
  // The controller migrates on start; the watcher opens its store afterwards.
  const ctl = await startControllerProcess(
    {
      databaseUrl: db.url,
      dataDir: db.dir,
      workers: o.workers,
      workerCpu: o.slots,
      adminToken: ADMIN_TOKEN,
      logLevel: 'warn',
    },
    o.profile,
    o.trace,
    o.built,
  );
  const watcher = await db.open();
  // A lean keep-alive HTTP client (as the heartbeat benchmark's), so the load generator takes
  // as little as it can of the two cores the controller and its workers share with it.
  const http = new LoadClient(ctl.url, o.concurrency);
  try {
    const body = JSON.stringify({ command: ['/bin/true'], resources: { cpu: 1 } });
    const launch = async (): Promise<{ job_id: string }> => {
      const res = await http.send('POST', '/api/v1/jobs', ADMIN_TOKEN, body);
      if (res.status !== 201) throw new Error(`launch answered ${res.status}: ${res.body}`);
      return JSON.parse(res.body) as { job_id: string };
    };
    if (o.warmup > 0) {
      await mapLimit(Array.from({ length: o.warmup }), o.concurrency, launch);
      await waitSucceeded(watcher, o.warmup);
    }
    await ctl.mark();
    const startedAt = Date.now();
    const t0 = nowMs();
    const launched = await mapLimit(Array.from({ length: o.jobs }), o.concurrency, launch);
    const submitMs = nowMs() - t0;
    await waitSucceeded(watcher, o.warmup + o.jobs);
    const controller = await ctl.stats();
    const ids = launched.map((l) => l.job_id);
    const rows: Array<{ submitted_at: number; finished_at: number | null }> = [];
    for (let i = 0; i < ids.length; i += 500) {
      rows.push(
        ...(await watcher.db
          .selectFrom('jobs')
          .select(['submitted_at', 'finished_at'])
          .where('id', 'in', ids.slice(i, i + 500))
          .execute()),
      );
    }
    const finished = rows.map((r) => r.finished_at ?? Number.NaN);
    const end = Math.max(...finished);
    const ms = end - startedAt;
    const latencies = rows.map((r) => (r.finished_at ?? Number.NaN) - r.submitted_at).sort((a, b) => a - b);
    return {
      dialect,
      n: o.jobs,
      ms,
      rate: (o.jobs * 1000) / ms,
      submitMs,
      latencyP50: percentile(latencies, 0.5),
      latencyP99: percentile(latencies, 0.99),
      controller,
    };
  } finally {
    http.close();
    await watcher.close();
    await ctl.stop();
    await db.cleanup();
  }
}

// ---------------------------------------------------------------------------------------------
// Scheduling pass

interface PassResult {
  dialect: Dialect;
  jobs: number;
  workers: number;
  setupMs: number;
  /** The pending-jobs query alone (reference). */
  loadMs: number;
  /** decidePlacements alone on the same data (reference). */
  decideMs: number;
  /** SchedulerLoop.pass(): decide + persist. */
  passMs: number;
  placed: number;
}

/** A pending no-op job, exactly as LaunchJob stores one. */
function jobRow(now: number): NewJobRow {
  return newJobRow({ command: ['/bin/true'] }, newId('job', now), now);
}

function workerRow(i: number, now: number): WorkersTable {
  return {
    id: newId('wrk', now),
    name: `bench-worker-${i}`,
    address: null,
    labels: '{}',
    device_type: null,
    cpu: 4,
    memory_mb: 16384,
    gpu: 0,
    health: 'healthy',
    registered_at: now + i,
    last_heartbeat_at: now,
    updated_at: now,
  };
}

/** Bulk set-up (not measured): jobs inserted like JobService.launch writes them, in chunks. */
async function seed(store: Store, dialect: Dialect, jobs: number, workers: number): Promise<void> {
  const now = Date.now();
  await store.db.transaction().execute(async (tx) => {
    const ws = Array.from({ length: workers }, (_, i) => workerRow(i, now));
    for (let i = 0; i < ws.length; i += 500)
      await tx
        .insertInto('workers')
        .values(ws.slice(i, i + 500))
        .execute();
    for (let i = 0; i < jobs; i += 500) {
      const chunk = Array.from({ length: Math.min(500, jobs - i) }, () => jobRow(now));
      await tx.insertInto('jobs').values(chunk).execute();
    }
  });
  // What autovacuum would have done by now on a live Postgres with this many new rows.
  if (dialect === 'postgres') await sql`analyze`.execute(store.db);
}

/** The inputs of decidePlacements, built from the store the way SchedulerLoop.pass does. */
async function decideInputs(
  store: Store,
): Promise<{ jobs: PendingJob[]; slots: WorkerSlot[]; loadMs: number }> {
  const t0 = nowMs();
  const pending = await jobRepo.pendingPage(store.db, 0, 1_000_000);
  const loadMs = nowMs() - t0;
  const workers = await workerRepo.list(store.db);
  const slots = freeSlots(workers, await jobRepo.usedCapacity(store.db));
  const jobs: PendingJob[] = pending.map((p) => ({
    id: p.id,
    seq: p.seq,
    resources: { cpu: p.cpu, memory_mb: p.memory_mb, gpu: p.gpu, device_type: p.device_type },
    gang: null,
  }));
  return { jobs, slots, loadMs };
}

async function schedulingPass(dialect: Dialect, nJobs: number, nWorkers: number): Promise<PassResult> {
  const db = freshDb(dialect);
  const store = await db.open();
  try {
    await store.migrate();
    const t0 = nowMs();
    await seed(store, dialect, nJobs, nWorkers);
    const setupMs = nowMs() - t0;
    const { jobs, slots, loadMs } = await decideInputs(store);
    const d0 = nowMs();
    decidePlacements(jobs, slots);
    const decideMs = nowMs() - d0;
    const loop = new SchedulerLoop(store, systemClock, pino({ level: 'warn' }), () => {});
    const p0 = nowMs();
    const stats = await loop.pass();
    const passMs = nowMs() - p0;
    if (!stats) throw new Error('scheduling pass did not run (leader lock held elsewhere)');
    const expected = Math.min(nJobs, nWorkers * 4);
    if (stats.placed !== expected) throw new Error(`pass placed ${stats.placed} jobs, expected ${expected}`);
    return {
      dialect,
      jobs: nJobs,
      workers: nWorkers,
      setupMs,
      loadMs,
      decideMs,
      passMs,
      placed: stats.placed,
    };
  } finally {
    await store.close();
    await db.cleanup();
  }
}

// ---------------------------------------------------------------------------------------------

export async function runController(argv: string[]): Promise<void> {
  const o = parseOptions(argv);
  const m = machine();
  console.log(machineLine(m));
  const c = o.workers * o.slots;
  console.log(
    `controller benchmark: ${o.jobs} jobs, ${o.workers} workers x ${o.slots} slots (concurrency ${c}), ` +
      `${o.concurrency} concurrent launches, warm-up ${o.warmup} jobs; stores: ${o.dialects.join(', ')}`,
  );

  const dialects: Dialect[] = [];
  for (const d of o.dialects) {
    if (d === 'postgres') {
      const why = await pgReachable();
      if (why) {
        console.log(`postgres: not reachable at ${PG_URL} (${why}); skipped`);
        continue;
      }
    }
    dialects.push(d);
  }

  const headers = ['measurement', 'store', 'figure', 'anchor', 'ratio', 'target', 'met'];
  const rows: Cell[][] = [];
  const notes: string[] = [];

  if (!o.skipE2e) {
    // The ceiling is measured before and after each end-to-end run; the best of those is the
    // anchor (noise from other processes only ever lowers it), so the ratios are conservative.
    const ceilings: SpawnCeiling[] = [];
    const measureCeiling = async (): Promise<void> => {
      log(`spawn ceiling: ${o.jobs} x /bin/true at concurrency ${c} ...`);
      ceilings.push(await spawnCeiling(o.jobs, c, 'plain'));
    };
    await measureCeiling();
    log('spawn ceiling, piped stdout/stderr in an own group (reference) ...');
    const supervised: SpawnCeiling = await spawnCeiling(o.jobs, c, 'supervised');
    let slurm: SlurmResult = { available: false, why: 'skipped (--skip-slurm)' };
    if (!o.skipSlurm) {
      log(`slurm: ${o.slurmJobs} jobs ...`);
      slurm = await slurmDrain(o.slurmJobs);
    }
    const results: E2EResult[] = [];
    for (const d of dialects) {
      log(`end to end on ${d}: ${o.jobs} jobs ...`);
      results.push(await endToEnd(d, o));
      await measureCeiling();
    }
    const ceiling = ceilings.reduce((best, x) => (x.rate > best.rate ? x : best));
    const anchorA = `${fmtRate(ceiling.rate)} spawns/s (a)`;
    const slurmCell = slurm.available
      ? `slurm ${fmtRate(slurm.rate)} jobs/s (b)`
      : `slurm: not available (${slurm.why})`;
    rows.push([
      `spawn ceiling (a): /bin/true, 1 node process, ${c} in flight`,
      '-',
      `${fmtRate(ceiling.rate)} spawns/s`,
      '-',
      '-',
      '-',
      '-',
    ]);
    rows.push([
      '  same, piped stdout/stderr, own group (ref.)',
      '-',
      `${fmtRate(supervised.rate)} spawns/s`,
      anchorA,
      fmtPercent(supervised.rate / ceiling.rate),
      '-',
      '-',
    ]);
    if (slurm.available) {
      rows.push([
        `slurm (b): ${slurm.n} jobs, sbatch --array`,
        '-',
        `${fmtRate(slurm.rate)} jobs/s`,
        anchorA,
        fmtPercent(slurm.rate / ceiling.rate),
        '-',
        '-',
      ]);
      if (slurm.completed !== slurm.n)
        notes.push(`slurm: only ${slurm.completed} of ${slurm.n} tasks COMPLETED`);
    }
    for (const r of results) {
      const d = r.dialect;
      const ratio = r.rate / ceiling.rate;
      rows.push([
        `end to end: ${r.n} x /bin/true, ${o.workers} workers x ${o.slots} slots`,
        d,
        `${fmtRate(r.rate)} jobs/s`,
        anchorA,
        fmtPercent(ratio),
        `>= ${fmtPercent(TARGET_E2E[d])}`,
        ratio >= TARGET_E2E[d] ? 'yes' : 'NO',
      ]);
      rows.push([
        '',
        d,
        `${fmtRate(r.rate)} jobs/s`,
        slurmCell,
        slurm.available ? `${(r.rate / slurm.rate).toFixed(1)}x` : '-',
        '-',
        '-',
      ]);
      notes.push(
        `${d}: ${fmtSeconds(r.ms)} first submit -> last SUCCEEDED; all ${r.n} launches answered after ${fmtSeconds(r.submitMs)} ` +
          `(${fmtRate((r.n * 1000) / r.submitMs)}/s); submit->finished latency p50 ${r.latencyP50} ms, p99 ${r.latencyP99} ms; ` +
          `controller event loop ${fmtPercent(r.controller.elu)} busy`,
      );
      const s = r.controller;
      if (s.traced) {
        notes.push(
          `${d} trace: ${s.transactions} store transactions (${(s.transactions / r.n).toFixed(2)}/job, ` +
            `${(s.transactionMs / s.transactions).toFixed(2)} ms each incl. waiting` +
            `, of which ${(s.lockWaitMs / s.transactions).toFixed(2)} ms before the body began: pool` +
            `${d === 'postgres' ? '; the outbox lock is taken with the first statement' : ', BEGIN'}), ` +
            `${s.passes} scheduling passes (${(s.passMs / Math.max(1, s.passes)).toFixed(1)} ms each, ` +
            `${fmtSeconds(s.passMs)} in all, ${(s.placed / Math.max(1, s.passes)).toFixed(1)} placed/pass)`,
        );
      }
    }
    notes.push(
      results.length > 0
        ? `end to end: the controller runs in its own process (startController from ${o.built ? 'dist/, built, its workers without tsx' : 'src/ under tsx'}, as \`runplane up\` does); ` +
            'the load generator (HTTP launches) and the completion watcher (its own store connection) run in the bench process'
        : 'end to end: no store available',
    );
    notes.push(
      `spawn ceiling (a): best of ${ceilings.map((x) => fmtRate(x.rate)).join(', ')} spawns/s ` +
        `(${ceilings[0]?.n ?? 0} spawns each, measured before and after each end-to-end run)`,
    );
    if (slurm.available)
      notes.push(
        `slurm (b): ${slurm.n} tasks drained in ${fmtSeconds(slurm.ms)} (${slurm.mode}), default scheduler settings`,
      );
  }

  if (!o.skipPass) {
    for (const d of dialects) {
      log(`scheduling pass on ${d}: warm-up ...`);
      await schedulingPass(d, 2000, 20);
      log(`scheduling pass on ${d}: ${o.passJobs} jobs x ${o.passWorkers} workers ...`);
      const r = await schedulingPass(d, o.passJobs, o.passWorkers);
      rows.push([
        `scheduling pass: ${r.jobs / 1000}k pending x ${r.workers} workers`,
        d,
        fmtSeconds(r.passMs),
        `decide alone ${fmtSeconds(r.decideMs)}`,
        `${(r.passMs / r.decideMs).toFixed(1)}x`,
        `<= ${TARGET_PASS_S[d]} s`,
        r.passMs <= TARGET_PASS_S[d] * 1000 ? 'yes' : 'NO',
      ]);
      notes.push(
        `${d} pass: placed ${r.placed}; pending query alone ${fmtSeconds(r.loadMs)}, decide alone ${fmtSeconds(r.decideMs)}, ` +
          `set-up (not measured) ${fmtSeconds(r.setupMs)}`,
      );
    }
  }

  const endLoad = machine().load;
  notes.push(`load average (1, 5, 15 min) at start ${m.load}, at end ${endLoad}`);
  if (Number(m.load.split(' ')[0]) > 0.5 * m.nproc) {
    notes.push(
      'WARNING: the machine was busy when the benchmark started; other processes may have skewed the figures',
    );
  }
  console.log('');
  printTable(headers, rows);
  if (notes.length > 0) {
    console.log('');
    for (const n of notes) console.log(`- ${n}`);
  }
  if (o.markdown) {
    console.log('');
    console.log(formatMarkdown(headers, rows));
  }
}

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}
