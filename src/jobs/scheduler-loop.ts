import type { Logger } from 'pino';
import { event } from '../events/catalog.js';
import { outboxRepo } from '../events/outbox-repo.js';
import type { Clock } from '../shared/clock.js';
import { leaderLockTaken, type Store, type Tx } from '../store/database.js';
import { readTogether } from '../store/read-together.js';
import { jobTraceparent } from '../tracing/context.js';
import { type AttemptRow, jobRepo, type PendingJobRow } from './job-repo.js';
import { describeResources } from './model.js';
import { decidePlacements, type PendingJob, type Placement, type WorkerSlot } from './scheduler.js';
import { type WorkerRow, workerRepo } from './worker-repo.js';

export interface PassStats {
  pending: number;
  placed: number;
  expired: number;
  workers: number;
  durationMs: number;
}

/** Healthy workers with what is free on each: capacity less the sum over active attempts. */
export function freeSlots(
  workers: readonly WorkerRow[],
  used: ReadonlyArray<{ worker_id: string; cpu: number; memory_mb: number; gpu: number }>,
): WorkerSlot[] {
  const usedBy = new Map(used.map((u) => [u.worker_id, u]));
  return workers
    .filter((w) => w.health === 'healthy')
    .map((w) => {
      const u = usedBy.get(w.id);
      return {
        id: w.id,
        healthy: true,
        device_type: w.device_type,
        free: {
          cpu: w.cpu - (u?.cpu ?? 0),
          memory_mb: w.memory_mb - (u?.memory_mb ?? 0),
          gpu: w.gpu - (u?.gpu ?? 0),
        },
      };
    });
}

const NEVER_FITS = 'no registered worker can ever hold this job';
/** Pending jobs read per query in a pass. */
/** The largest page of pending jobs a pass reads at once. */
const PAGE_SIZE = 1000;
/** The smallest first page. */
const MIN_PAGE = 64;

/**
 * Runs scheduling passes: load pending jobs and free capacity, decide with the pure
 * first-fit function, persist every placement in one transaction, then wake the workers.
 * Passes are triggered by submissions and freed capacity (coalesced) and by a timer.
 */
export class SchedulerLoop {
  private running = false;
  private again = false;
  private wantFull = false;
  /** Highest job seq whose fit was already explained by a pass. */
  private explainedUpTo = 0;
  private scheduled: NodeJS.Timeout | null = null;
  private timer: NodeJS.Timeout | null = null;
  private idle: Promise<void> = Promise.resolve();
  private stopped = true;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly onPlaced: (workerIds: Set<string>) => void,
    private readonly onPass: (stats: PassStats) => void = () => {},
    private readonly debounceMs = 2,
  ) {}

  start(intervalMs = 1000): void {
    this.stopped = false;
    this.timer = setInterval(() => this.kick(true), intervalMs);
    this.kick(true);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.scheduled) clearTimeout(this.scheduled);
    await this.idle;
  }

  /**
   * Asks for a pass soon. Submissions and reports kick in bursts; kicks within a couple of
   * milliseconds, or while a pass runs, coalesce into one pass. `full` also expires timeouts.
   */
  kick(full = false): void {
    if (this.stopped) return;
    if (full) this.wantFull = true;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = setTimeout(() => this.run(), this.debounceMs);
  }

  private run(): void {
    this.scheduled = null;
    this.running = true;
    const full = this.wantFull;
    this.wantFull = false;
    this.idle = this.pass({ full })
      .then(() => undefined)
      .catch((err: unknown) => this.log.error({ err }, 'scheduling pass failed'))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /**
   * One scheduling pass (decide + persist). Returns null when another replica holds the lock.
   * A quick pass (not `full`) skips timeouts, and does not read the pending jobs at all when
   * no worker has room for even the smallest of them.
   */
  async pass(opts: { full?: boolean } = {}): Promise<PassStats | null> {
    const full = opts.full ?? true;
    const started = performance.now();
    const now = this.clock.now();
    // Nothing pending, nothing to place, expire or explain: one read, and the write (with the
    // outbox lock other writers queue behind) is never begun. A job submitted meanwhile kicks
    // a pass of its own.
    if (!(await jobRepo.anyPending(this.store.db))) {
      const stats = {
        pending: 0,
        placed: 0,
        expired: 0,
        workers: 0,
        durationMs: performance.now() - started,
      };
      this.onPass(stats);
      return stats;
    }
    const result = await this.store.write(async (tx) => {
      // One round trip on Postgres (with BEGIN and the outbox lock): the leader lock, and what
      // the pass decides from.
      const leader = this.store.leaderLockQuery(tx, 'scheduler');
      const [workers, usedRows, leastRows, lock] = await readTogether(tx, [
        workerRepo.listQuery(tx),
        jobRepo.usedCapacityQuery(tx),
        jobRepo.smallestPendingQuery(tx),
        ...(leader ? [leader] : []),
      ]);
      if (!leaderLockTaken(lock)) return null;
      // Expiry changes the pending jobs and frees nothing: what was read still bounds the pass.
      const expired = full ? await this.expire(tx, now) : 0;
      const slots = freeSlots(workers, jobRepo.usedCapacityOf(usedRows));
      const least = jobRepo.smallestPendingOf(leastRows);
      const { placements, loaded } = await this.decide(tx, slots, least);
      const wake = await this.persist(tx, placements, loaded, now);
      // A full pass re-checks every pending job; a quick one only those submitted since (none
      // when no pending job is newer than the last one explained).
      if (full || least.maxSeq > this.explainedUpTo)
        await this.explainNeverFits(tx, workers, full ? 0 : this.explainedUpTo, full, now);
      this.explainedUpTo = Math.max(this.explainedUpTo, least.maxSeq);
      return {
        wake,
        stats: { pending: least.n, placed: placements.length, expired, workers: slots.length },
      };
    });
    if (!result) return null;
    const stats = { ...result.stats, durationMs: performance.now() - started };
    if (result.wake.size > 0) this.onPlaced(result.wake);
    this.onPass(stats);
    return stats;
  }

  /**
   * Reads pending jobs page by page in FIFO order and places them, until the pending jobs run
   * out or no worker has room left for even the smallest pending request: a deep queue costs
   * one page, not the whole queue. A gang is taken whole with its first member.
   */
  private async decide(
    tx: Tx,
    slots: WorkerSlot[],
    least: { n: number; cpu: number; memory_mb: number; gpu: number },
  ): Promise<{ placements: Placement[]; loaded: PendingJobRow[] }> {
    const placements: Placement[] = [];
    const loaded: PendingJobRow[] = [];
    const room = () =>
      slots.some(
        (s) =>
          least.cpu <= s.free.cpu + 1e-9 && least.memory_mb <= s.free.memory_mb && least.gpu <= s.free.gpu,
      );
    const seen = new Set<string>();
    let after = 0;
    // The first page is sized to what can be placed (four times as many jobs of the smallest
    // request as fit in the free capacity), so a pass with a few free slots in a deep queue
    // reads tens of rows, not a thousand; each further page doubles, up to PAGE_SIZE.
    let pageSize = Math.min(PAGE_SIZE, Math.max(MIN_PAGE, 4 * fitCount(slots, least)));
    while (least.n > 0 && room()) {
      const page = await jobRepo.pendingPage(tx, after, pageSize);
      const last = page[page.length - 1];
      if (!last) break;
      after = last.seq;
      const fresh = page.filter((p) => !seen.has(p.id));
      const gangIds = [...new Set(fresh.flatMap((p) => (p.gang_id ? [p.gang_id] : [])))];
      const members = (await jobRepo.pendingGangMembers(tx, gangIds)).filter((p) => !seen.has(p.id));
      const batch = [...new Map([...fresh, ...members].map((p) => [p.id, p])).values()];
      for (const p of batch) seen.add(p.id);
      const nonPending = await jobRepo.gangNonPendingCounts(tx, gangIds);
      const jobs: PendingJob[] = batch.map((p) => ({
        id: p.id,
        seq: p.seq,
        resources: { cpu: p.cpu, memory_mb: p.memory_mb, gpu: p.gpu, device_type: p.device_type },
        gang: p.gang_id
          ? { id: p.gang_id, required: (p.gang_size ?? 1) - (nonPending.get(p.gang_id) ?? 0) }
          : null,
      }));
      const decided = decidePlacements(jobs, slots).placements;
      // Capacity handed out on this page is gone for the next one.
      const byJob = new Map(batch.map((p) => [p.id, p]));
      const bySlot = new Map(slots.map((s) => [s.id, s]));
      for (const d of decided) {
        const job = byJob.get(d.job_id);
        const slot = bySlot.get(d.worker_id);
        if (!job || !slot) continue;
        slot.free = {
          cpu: slot.free.cpu - job.cpu,
          memory_mb: slot.free.memory_mb - job.memory_mb,
          gpu: slot.free.gpu - job.gpu,
        };
      }
      placements.push(...decided);
      loaded.push(...batch);
      if (page.length < pageSize) break;
      pageSize = Math.min(PAGE_SIZE, pageSize * 2);
    }
    return { placements, loaded };
  }

  private async persist(
    tx: Tx,
    placements: ReturnType<typeof decidePlacements>['placements'],
    pending: PendingJobRow[],
    now: number,
  ): Promise<Set<string>> {
    const wake = new Set<string>();
    if (placements.length === 0) return wake;
    const byId = new Map(pending.map((p) => [p.id, p]));
    // The jobs were read PENDING in this write, under the outbox lock: each of them moves.
    const placed = placements.flatMap((p) => {
      const job = byId.get(p.job_id);
      return job ? [{ job, workerId: p.worker_id }] : [];
    });
    const attempts: AttemptRow[] = [];
    const events = [];
    await jobRepo.markPlaced(
      tx,
      placed.map((p) => p.job.id),
      now,
    );
    for (const { job, workerId } of placed) {
      const attemptNo = job.attempt_count + 1;
      const attemptId = `${job.id}-${attemptNo}`;
      attempts.push({
        id: attemptId,
        job_id: job.id,
        attempt_no: attemptNo,
        worker_id: workerId,
        state: 'BUILDING',
        exit_code: null,
        reason: null,
        cpu: job.cpu,
        memory_mb: job.memory_mb,
        gpu: job.gpu,
        assigned_at: now,
        started_at: null,
        finished_at: null,
      });
      events.push(
        event('job.state_changed', job.id, {
          job_id: job.id,
          state: 'BUILDING',
          previous: 'PENDING',
          attempt_id: attemptId,
          worker_id: workerId,
          reason: null,
          run_id: job.run_id,
        }),
      );
      wake.add(workerId);
    }
    await jobRepo.insertAttempts(tx, attempts);
    await outboxRepo.append(tx, events, now);
    return wake;
  }

  /** Pending jobs past their scheduling timeout become UNSCHEDULABLE. */
  private async expire(tx: Tx, now: number): Promise<number> {
    const expired = await jobRepo.expiredPending(tx, now);
    for (const job of expired) {
      const reason = `not scheduled within ${job.scheduling_timeout_s}s${job.reason ? `: ${job.reason}` : ''}`;
      if (
        await jobRepo.transition(
          tx,
          job.id,
          ['PENDING'],
          { state: 'UNSCHEDULABLE', reason, finished_at: now },
          now,
        )
      ) {
        await outboxRepo.append(
          tx,
          [
            event(
              'job.state_changed',
              job.id,
              {
                job_id: job.id,
                state: 'UNSCHEDULABLE',
                previous: 'PENDING',
                attempt_id: job.current_attempt_id,
                worker_id: null,
                reason,
                run_id: job.run_id,
              },
              jobTraceparent(job.env),
            ),
          ],
          now,
        );
      }
    }
    return expired.length;
  }

  /**
   * Says in `reason`, at once, when no registered worker could hold a job even if idle, and
   * (on full passes) clears that once one that could has registered. The fit test runs in SQL,
   * so a deep queue is not read into memory; a reason is written only when it changes.
   */
  private async explainNeverFits(
    tx: Tx,
    workers: WorkerRow[],
    afterSeq: number,
    full: boolean,
    now: number,
  ): Promise<void> {
    const live = workers.filter((w) => w.health !== 'offline');
    const max = { cpu: 0, memory_mb: 0, gpu: 0 };
    for (const w of live) {
      max.cpu = Math.max(max.cpu, w.cpu);
      max.memory_mb = Math.max(max.memory_mb, w.memory_mb);
      max.gpu = Math.max(max.gpu, w.gpu);
    }
    for (const p of await jobRepo.pendingByFit(tx, afterSeq, false)) {
      const req = { cpu: p.cpu, memory_mb: p.memory_mb, gpu: p.gpu, device_type: p.device_type };
      const reason =
        live.length === 0
          ? `${NEVER_FITS}: no worker is registered`
          : `${NEVER_FITS}: needs ${describeResources(req)}; largest worker offers cpu=${max.cpu} memory_mb=${max.memory_mb} gpu=${max.gpu}`;
      if (reason !== p.reason) await jobRepo.setReason(tx, p.id, reason, now);
    }
    if (!full) return;
    // Only jobs that carry the reason are read, not every pending job that fits.
    for (const p of await jobRepo.pendingByFit(tx, 0, true, NEVER_FITS)) {
      await jobRepo.setReason(tx, p.id, null, now);
    }
  }
}

/** How many jobs of the smallest pending request the free capacity could hold. */
function fitCount(
  slots: readonly WorkerSlot[],
  least: { cpu: number; memory_mb: number; gpu: number },
): number {
  let n = 0;
  for (const s of slots) {
    const byDim = [
      least.cpu > 0 ? Math.floor((s.free.cpu + 1e-9) / least.cpu) : Number.POSITIVE_INFINITY,
      least.memory_mb > 0 ? Math.floor(s.free.memory_mb / least.memory_mb) : Number.POSITIVE_INFINITY,
      least.gpu > 0 ? Math.floor(s.free.gpu / least.gpu) : Number.POSITIVE_INFINITY,
    ];
    const fit = Math.min(...byDim);
    n += Number.isFinite(fit) ? Math.max(0, fit) : PAGE_SIZE;
    if (n >= PAGE_SIZE) return PAGE_SIZE;
  }
  return n;
}
