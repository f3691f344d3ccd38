import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { TokenService } from '../auth/token-service.js';
import type { CanSpawn } from '../coordination/task-limiter.js';
import { SWEEP_TRIAL_TASK_TYPE } from '../coordination/task-limits.js';
import { event, type NewEvent } from '../events/catalog.js';
import { outboxRepo } from '../events/outbox-repo.js';
import { commandRepo } from '../runs/command-repo.js';
import type { CommandService } from '../runs/command-service.js';
import type { RunStatus } from '../runs/model.js';
import { type RunRow, runRepo } from '../runs/run-repo.js';
import type { RunService } from '../runs/run-service.js';
import { parseSummary } from '../runs/views.js';
import type { Clock } from '../shared/clock.js';
import { AppError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Store } from '../store/database.js';
import {
  type Dispatcher,
  DispatcherUnavailable,
  type DispatchStatus,
  makeRef,
  parseRef,
} from './dispatchers/dispatcher.js';
import { route } from './dispatchers/pool.js';
import {
  ACTIVE_SWEEP_STATUSES,
  aggregateSeries,
  bestTrial,
  type DispatchState,
  deriveTrialStatus,
  type EndReason,
  EVAL_RESULT_GRACE_MS,
  evalJobName,
  isDispatchActive,
  isFinalTrial,
  observationOf,
  renderCommand,
  type SweepSpec,
  type SweepStatus,
  shouldRetry,
  type TaskSpec,
  type TrialStatus,
  trainJobName,
  valuesFromSummary,
} from './model.js';
import { createOptimizer, type Observation, type Optimizer } from './optimizers/index.js';
import { retrying } from './retry.js';
import { createScheduler, type SchedulerDecision, type TrialView } from './schedulers/index.js';
import type { Params } from './space.js';
import { type SweepRow, sweepRepo, type TrialPatch, type TrialRow } from './sweep-repo.js';
import { createTrial, type NewAttempt, nextAttempt, retryTrial } from './trial-runs.js';
import { LAUNCH_BLOCKED_PREFIX } from './views.js';

export interface SweepControllerOptions {
  /** The lease a process holds on a sweep it drives; another replica takes over after it. */
  leaseMs: number;
  /** Where trial checkpoints go unless the sweep file says: `<dir>/<sweep>/trial-<n>`. */
  checkpointDir: string;
  /** The controller's URL as jobs see it. */
  controllerUrl: () => string;
  /**
   * Who holds the leases: stable across restarts of one installation (kept in its data dir), so
   * a controller restarted after a crash takes its sweeps back at once instead of waiting for
   * its own old lease to run out.
   */
  owner?: string;
  /**
   * `can_spawn(task_type, null)` (the coordination slice's TaskLimiter), asked before each trial
   * job is launched; a refused job waits for a later round. Absent: no limits.
   */
  canSpawn?: CanSpawn;
}

/** What can_spawn limits a sweep's trial jobs under: its sweep file's `task_type`, else `sweep_trial`. */
export function sweepTaskType(spec: SweepSpec): string {
  return spec.task_type ?? SWEEP_TRIAL_TASK_TYPE;
}

interface Round {
  sweep: SweepRow;
  spec: SweepSpec;
  trials: TrialRow[];
  runs: Map<string, RunRow>;
  now: number;
}

/** What one round did, for tests and logs. */
export interface RoundReport {
  sweep_id: string;
  status: SweepStatus;
  created: number[];
  launched: string[];
  stopped: number[];
  retried: number[];
  /** Trials whose job can_spawn refused this round (they wait for a later one). */
  blocked: number[];
}

/**
 * The seed's stateless controller loop, one round per active sweep: fetch every trial and run
 * of the sweep from the store → compute the trials' derived statuses → the scheduler decides →
 * the decision is stored (new trials with their runs, stops, retries, rung values: one
 * transaction, before anything is dispatched) → the dispatcher executes → transient states are
 * stored. Nothing is kept in memory between rounds, so the process can be killed at any
 * instant: a trial is created exactly once (its number and parameters are stored with its run),
 * a suggestion is never repeated (the optimizer is re-asked by trial number), and a job launched
 * but not recorded is found again by its unique name.
 */
export class SweepController {
  private readonly owner: string;
  private timer: NodeJS.Timeout | null = null;
  /** Rounds run one after another: a kick while one runs queues (at most) one more. */
  private queue: Promise<unknown> = Promise.resolve();
  private kicked = false;
  private stopped = false;
  private readonly optimizers = new Map<string, { spec: string; optimizer: Optimizer }>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly runs: RunService,
    private readonly commands: CommandService,
    private readonly tokens: TokenService,
    private readonly dispatchers: ReadonlyMap<string, Dispatcher>,
    private readonly opts: SweepControllerOptions,
  ) {
    this.owner = opts.owner ?? `${hostname()}:${process.pid}:${newId('ctl')}`;
  }

  start(intervalMs = 1000): void {
    this.timer = setInterval(() => this.kick(), intervalMs);
  }

  /** Runs a round soon; kicks that arrive before it starts share it. */
  kick(): void {
    if (this.kicked || this.stopped) return;
    this.kicked = true;
    void this.tick()
      .catch((err: unknown) => this.log.error({ err }, 'sweep loop failed'))
      .finally(() => {
        this.kicked = false;
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.queue;
    for (const d of this.dispatchers.values()) await d.close?.();
  }

  /** One round over every active sweep, after any round in progress; tests call it directly. */
  tick(): Promise<RoundReport[]> {
    const next = this.queue.then(() => this.roundAll());
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async roundAll(): Promise<RoundReport[]> {
    const ids = await retrying(() => sweepRepo.activeIds(this.store.db, ACTIVE_SWEEP_STATUSES));
    const out: RoundReport[] = [];
    for (const id of ids) {
      try {
        const r = await this.round(id);
        if (r) out.push(r);
      } catch (err) {
        this.log.error({ err, sweep: id }, 'sweep round failed');
        await retrying(() =>
          this.store.write((tx) =>
            sweepRepo.update(tx, id, { last_error: (err as Error).message, updated_at: this.clock.now() }),
          ),
        ).catch(() => undefined);
      }
    }
    return out;
  }

  private optimizerFor(sweep: SweepRow, spec: SweepSpec): Optimizer {
    const cached = this.optimizers.get(sweep.id);
    if (cached && cached.spec === sweep.spec) return cached.optimizer;
    const optimizer = createOptimizer(
      spec.optimizer,
      spec.parameters,
      spec.objectives.map((o) => o.direction),
    );
    this.optimizers.set(sweep.id, { spec: sweep.spec, optimizer });
    return optimizer;
  }

  /** One round of one sweep. Returns null when another replica holds the sweep. */
  async round(sweepId: string): Promise<RoundReport | null> {
    const now = this.clock.now();
    const owned = await retrying(() =>
      this.store.write((tx) => sweepRepo.claimLease(tx, sweepId, this.owner, now, now + this.opts.leaseMs)),
    );
    if (!owned) return null;
    // 1. Fetch all trials and runs of the sweep.
    const sweep = await retrying(() => sweepRepo.get(this.store.db, sweepId));
    if (!sweep || !ACTIVE_SWEEP_STATUSES.includes(sweep.status as SweepStatus)) return null;
    const spec = JSON.parse(sweep.spec) as SweepSpec;
    const trials = await retrying(() => sweepRepo.trials(this.store.db, sweepId));
    const runs = new Map(
      (
        await retrying(() =>
          runRepo.getMany(
            this.store.db,
            trials.map((t) => t.run_id),
          ),
        )
      ).map((r) => [r.id, r]),
    );
    const r: Round = { sweep, spec, trials, runs, now };
    const report: RoundReport = {
      sweep_id: sweepId,
      status: sweep.status as SweepStatus,
      created: [],
      launched: [],
      stopped: [],
      retried: [],
      blocked: [],
    };

    // 2. Job states of every trial with a job that may still run.
    const states = await this.jobStates(trials);

    // 3. Derived statuses, objective values, sign of life.
    const scheduler = createScheduler(spec.scheduler);
    const seriesNames = new Set<string>();
    if (scheduler.metric) seriesNames.add(scheduler.metric);
    for (const o of spec.objectives) if (o.aggregate !== 'last') seriesNames.add(o.metric);
    const series = await this.seriesOf(trials, [...seriesNames]);
    const updates = new Map<number, TrialPatch>();
    const events: NewEvent[] = [];
    const retries: TrialRow[] = [];
    const endRuns: Array<{ runId: string; why: string; refs: string[] }> = [];
    const views: TrialView[] = [];
    for (const t of trials) {
      const next = this.derive(r, t, states, series);
      const patch = next.patch;
      if (next.status !== t.status) {
        patch.status = next.status;
        events.push(trialEvent(t, next.status, next.error, next.values));
      }
      if (Object.keys(patch).length > 0) updates.set(t.number, { ...patch, updated_at: now });
      const merged: TrialRow = { ...t, ...(patch as Partial<TrialRow>) };
      // STALE and failed trials: given up on the attempt; retried by policy.
      if (next.status === 'STALE' || (next.status === 'FAILED' && !isFinalTrial(t.status as TrialStatus))) {
        const reason: EndReason = next.status === 'STALE' ? 'stale' : (next.reason ?? 'failed');
        // The given-up attempt's jobs are stopped, so a stale trial never lingers as a zombie.
        const refs = [
          [t.train_ref, merged.train_state],
          [t.eval_ref, merged.eval_state],
        ]
          .filter(([ref, state]) => ref !== null && isDispatchActive(state as DispatchState))
          .map(([ref]) => ref as string);
        endRuns.push({ runId: t.run_id, why: next.error ?? reason, refs });
        if (sweep.status === 'running' && shouldRetry(reason, t.attempt, spec.retry)) {
          retries.push(merged);
        } else {
          const done: TrialPatch = {
            status: 'FAILED',
            end_reason: reason,
            error: next.error,
            ended_at: now,
            updated_at: now,
          };
          updates.set(t.number, { ...updates.get(t.number), ...done });
          merged.status = 'FAILED';
          if (next.status === 'STALE')
            events.push(trialEvent({ ...t, status: 'STALE' }, 'FAILED', next.error, null));
        }
      }
      views.push(this.viewOf(merged, series.get(`${t.run_id}\u0000${scheduler.metric ?? ''}`) ?? []));
    }

    // 4. The scheduler decides.
    const optimizer = this.optimizerFor(sweep, spec);
    const exhausted =
      sweep.exhausted_at !== null || (optimizer.size !== null && sweep.trial_count >= optimizer.size);
    const stopping = sweep.status === 'stopping';
    const decision = scheduler.decide({
      trials: views,
      space: spec.parameters,
      seed: Number(spec.optimizer.seed ?? 0),
      trialCount: sweep.trial_count,
      maxTrials: spec.max_trials,
      maxParallel: spec.max_parallel_jobs,
      exhausted,
      stopping,
    });

    // 5. Store the decision before anything is dispatched.
    // A trial about to get another attempt is still going, for the optimizer as for everyone.
    const again = new Set(retries.map((t) => t.number));
    const history = (await this.history(spec, trials, updates)).filter((o) => !again.has(o.number));
    const created = await retrying(() =>
      this.store.write(async (tx) => {
        const fresh = await sweepRepo.get(tx, sweepId);
        if (!fresh || fresh.trial_count !== sweep.trial_count || fresh.status !== sweep.status) {
          // Someone else changed the sweep meanwhile (a stop, another replica): next round.
          return null;
        }
        for (const [number, patch] of updates) await sweepRepo.updateTrial(tx, sweepId, number, patch);
        await this.storeDecision(tx, r, decision, updates, events);
        const made: TrialRow[] = [];
        let count = sweep.trial_count;
        let exhaustedAt = sweep.exhausted_at;
        for (const t of retries) {
          const a = nextAttempt(sweep, spec.labels, t);
          await retryTrial(tx, a, now);
          report.retried.push(t.number);
        }
        for (const s of decision.spawn) {
          const a: NewAttempt = {
            ...baseAttempt(sweep, spec, count),
            params: s.params,
            origin: 'pbt',
            parentNumber: s.parent,
            member: s.member,
            startStep: s.startStep,
            resumeFrom: this.checkpointDir(spec, sweepId, s.parent),
          };
          made.push(await createTrial(tx, a, now));
          count++;
        }
        if (decision.create > 0 && exhaustedAt === null && !stopping) {
          const pending: Params[] = trials
            .filter(
              (t) =>
                again.has(t.number) ||
                !isFinalTrial((updates.get(t.number)?.status ?? t.status) as TrialStatus),
            )
            .map((t) => JSON.parse(t.params) as Params);
          for (let i = 0; i < decision.create; i++) {
            const params = optimizer.suggest(count, history, pending);
            if (params === null) {
              exhaustedAt = now;
              break;
            }
            pending.push(params);
            const placement = decision.assign(count);
            const a: NewAttempt = {
              ...baseAttempt(sweep, spec, count),
              params,
              origin: spec.optimizer.type,
              bracket: placement.bracket,
              member: placement.member,
            };
            made.push(await createTrial(tx, a, now));
            count++;
          }
        }
        const best = bestOf(trials, updates, spec);
        await sweepRepo.update(tx, sweepId, {
          trial_count: count,
          exhausted_at: exhaustedAt,
          best_trial: best?.number ?? null,
          best_value: best?.value ?? null,
          last_error: null,
          updated_at: now,
        });
        await outboxRepo.append(tx, events, now);
        return made;
      }),
    );
    if (created === null) return report;
    report.created = created.map((t) => t.number);
    report.stopped = decision.stop.map((s) => s.number);

    // 6. The dispatcher executes: stops, then launches.
    for (const e of endRuns) {
      for (const ref of e.refs) {
        const { dispatcher, id } = parseRef(ref);
        await this.dispatchers
          .get(dispatcher)
          ?.stop(id, e.why)
          .catch((err: unknown) => this.log.warn({ err, ref }, 'stopping a job failed'));
      }
      await this.endRun(e.runId, e.why);
    }
    const latest = await retrying(() => sweepRepo.trials(this.store.db, sweepId));
    await this.executeStops(spec, latest, states, now);
    const byNumber = new Map(latest.map((t) => [t.number, t]));
    const launches: Array<{ t: TrialRow; kind: 'train' | 'eval' }> = [];
    if (!stopping) {
      for (const j of decision.jobs) {
        const t = byNumber.get(j.number);
        // A retried trial got a new attempt above: launch it (its training is pending again).
        if (t) launches.push({ t, kind: j.type === 'LAUNCH_EVAL' ? 'eval' : 'train' });
      }
      for (const n of report.retried) {
        const t = byNumber.get(n);
        if (t && !launches.some((l) => l.t.number === n)) launches.push({ t, kind: 'train' });
      }
      for (const c of created) {
        const t = byNumber.get(c.number);
        if (t) launches.push({ t, kind: 'train' });
      }
    }
    let active = latest.filter(
      (t) =>
        isDispatchActive(t.train_state as DispatchState) || isDispatchActive(t.eval_state as DispatchState),
    ).length;
    const taskType = sweepTaskType(spec);
    // Jobs of the task type outside the job table (local, Slurm): counted once, when first needed.
    let outside: number | null = null;
    // Once can_spawn refuses, the round's remaining launches wait too (the same limit holds them).
    let blocked: string | null = null;
    for (const l of launches) {
      if (active >= spec.max_parallel_jobs) break;
      if (l.kind === 'train' && (l.t.train_ref !== null || l.t.status !== 'PENDING')) continue;
      if (l.kind === 'eval' && l.t.eval_ref !== null) continue;
      if (this.opts.canSpawn && blocked === null) {
        outside ??= await this.activeOutsideJobTable(taskType);
        const d = await this.opts.canSpawn(taskType, null, { extraActive: outside });
        if (!d.allowed) blocked = d.reason;
      }
      if (blocked !== null) {
        // Not launched this round: the trial keeps waiting (nothing was dispatched or recorded for
        // it), and the refusal is shown with it until a later round launches it.
        await this.markBlocked(sweepId, l.t, blocked);
        report.blocked.push(l.t.number);
        continue;
      }
      let ref: string | null;
      try {
        ref = await this.launch(sweep, spec, l.t, l.kind);
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        // The job itself is refused (a bad cwd, resources no worker has): the trial fails
        // instead of the round failing forever.
        await this.refuse(sweepId, l.t, `launching the ${l.kind} job was refused: ${err.message}`);
        continue;
      }
      if (ref) {
        report.launched.push(ref);
        active++;
        if (outside !== null && parseRef(ref).dispatcher !== 'workers') outside++;
      }
    }

    // 7. The sweep's own status.
    report.status = await this.settle(sweep, spec, decision, exhausted || created.length < decision.create);
    return report;
  }

  /** Job states of every trial whose jobs may still be going (train or eval). */
  private async jobStates(trials: readonly TrialRow[]): Promise<Map<string, DispatchStatus>> {
    const byDispatcher = new Map<string, string[]>();
    for (const t of trials) {
      for (const [ref, state] of [
        [t.train_ref, t.train_state],
        [t.eval_ref, t.eval_state],
      ] as const) {
        if (ref === null || (state !== null && !isDispatchActive(state as DispatchState))) continue;
        const { dispatcher, id } = parseRef(ref);
        const list = byDispatcher.get(dispatcher) ?? [];
        list.push(id);
        byDispatcher.set(dispatcher, list);
      }
    }
    const out = new Map<string, DispatchStatus>();
    for (const [name, ids] of byDispatcher) {
      const d = this.dispatchers.get(name);
      if (!d) continue;
      try {
        for (const [id, s] of await d.status(ids)) out.set(makeRef(name, id), s);
      } catch (err) {
        // A dispatcher that cannot answer now: its jobs keep their last known state this round.
        this.log.warn({ err, dispatcher: name }, 'dispatcher status failed');
      }
    }
    return out;
  }

  private async seriesOf(
    trials: readonly TrialRow[],
    names: string[],
  ): Promise<Map<string, Array<{ step: number; value: number }>>> {
    const out = new Map<string, Array<{ step: number; value: number }>>();
    if (names.length === 0) return out;
    // Finished trials' values are settled: only trials still going (or just ending) are read.
    const runIds = trials
      .filter(
        (t) => !isFinalTrial(t.status as TrialStatus) || isDispatchActive(t.train_state as DispatchState),
      )
      .map((t) => t.run_id);
    for (const p of await retrying(() => sweepRepo.series(this.store.db, runIds, names))) {
      const k = `${p.run_id}\u0000${p.name}`;
      const list = out.get(k) ?? [];
      list.push({ step: p.step, value: p.value });
      out.set(k, list);
    }
    return out;
  }

  private derive(
    r: Round,
    t: TrialRow,
    states: ReadonlyMap<string, DispatchStatus>,
    series: ReadonlyMap<string, Array<{ step: number; value: number }>>,
  ): {
    status: TrialStatus;
    reason: EndReason | null;
    error: string | null;
    values: number[] | null;
    patch: TrialPatch;
  } {
    const patch: TrialPatch = {};
    const run = r.runs.get(t.run_id);
    const train = t.train_ref ? states.get(t.train_ref) : undefined;
    const ev = t.eval_ref ? states.get(t.eval_ref) : undefined;
    let trainState = (train?.state ?? t.train_state) as DispatchState | null;
    const evalState = (ev?.state ?? t.eval_state) as DispatchState | null;
    // The runs slice already knows the job: a run whose job exists but was never recorded.
    if (t.train_ref === null && run?.job_id && r.spec.dispatcher.type === 'workers') {
      patch.train_ref = makeRef('workers', run.job_id);
      trainState = 'pending';
    }
    if (trainState !== t.train_state) patch.train_state = trainState;
    if (evalState !== t.eval_state) patch.eval_state = evalState;
    let activity = t.activity_at;
    for (const at of [run?.updated_at, run?.last_heartbeat_at, train?.changedAt, ev?.changedAt]) {
      if (typeof at === 'number' && at > activity) activity = Math.floor(at);
    }
    if (activity !== t.activity_at) patch.activity_at = activity;
    const summary: Record<string, number> = {};
    for (const [name, [, value]] of Object.entries(parseSummary(run?.summary ?? '{}'))) summary[name] = value;
    let values = valuesFromSummary(r.spec.objectives, summary);
    if (values !== null && r.spec.objectives.some((o) => o.aggregate !== 'last')) {
      values = r.spec.objectives.map((o, i) =>
        o.aggregate === 'last'
          ? (values?.[i] ?? Number.NaN)
          : (aggregateSeries(o, series.get(`${t.run_id}\u0000${o.metric}`) ?? []) ?? Number.NaN),
      );
    }
    const status = t.status as TrialStatus;
    if (isFinalTrial(status)) {
      // A pruned trial's values settle as its learner reports its last ones.
      if (status === 'PRUNED' && values && JSON.stringify(values) !== t.objective_values)
        patch.objective_values = JSON.stringify(values);
      return { status, reason: null, error: null, values, patch };
    }
    const runEnded =
      run && ['completed', 'failed', 'terminated'].includes(run.status) ? (run.status as 'completed') : null;
    let d = deriveTrialStatus({
      status,
      hasEval: r.spec.eval !== null,
      trainState,
      evalState,
      values,
      runEnded,
      activityAt: activity,
      now: r.now,
      staleAfterMs: r.spec.stale_after_ms,
      runHealth: run?.health ?? 'healthy',
    });
    if (
      d.status === 'EVAL_DONE_NOT_COMPLETED' &&
      ev?.changedAt &&
      r.now - ev.changedAt > EVAL_RESULT_GRACE_MS
    ) {
      d = {
        status: 'FAILED',
        reason: 'no_objective',
        error: 'evaluation ended without reporting the objective metric',
      };
    }
    if (d.status === 'COMPLETED') {
      patch.objective_values = JSON.stringify(values);
      patch.end_reason = 'completed';
      patch.ended_at = r.now;
      patch.cost = costOf(r.spec, summary, run, r.now);
    }
    if (d.status === 'IN_TRAINING' && status === 'PENDING' && t.activity_at < r.now)
      patch.activity_at = Math.max(activity, r.now);
    if (d.error) patch.error = d.error;
    return {
      status: d.status,
      reason: d.reason,
      error: d.error,
      values: d.status === 'COMPLETED' ? values : null,
      patch,
    };
  }

  private viewOf(t: TrialRow, series: Array<{ step: number; value: number }>): TrialView {
    const status = t.status as TrialStatus;
    return {
      number: t.number,
      status,
      params: JSON.parse(t.params) as Params,
      values: t.objective_values ? (JSON.parse(t.objective_values) as number[]) : null,
      series,
      rungs: JSON.parse(t.rungs) as Record<string, number>,
      bracket: t.bracket,
      member: t.member,
      parentNumber: t.parent_number,
      startStep: t.start_step,
      active:
        isDispatchActive(t.train_state as DispatchState) || isDispatchActive(t.eval_state as DispatchState),
      needsTraining: t.train_ref === null,
    };
  }

  /** The optimizer's history: every finished trial, plus warm-start trials with negative numbers. */
  private async history(
    spec: SweepSpec,
    trials: readonly TrialRow[],
    updates: ReadonlyMap<number, TrialPatch>,
  ): Promise<Observation[]> {
    const out: Observation[] = [];
    if (spec.warm_start.length > 0) {
      const earlier = await retrying(() => sweepRepo.trialsOfSweeps(this.store.db, spec.warm_start));
      let n = -1;
      for (const t of earlier) {
        const o = observationOf(trialFacts(t));
        if (o && o.state === 'completed') out.push({ ...o, number: n-- });
      }
    }
    for (const t of trials) {
      const o = observationOf(trialFacts({ ...t, ...(updates.get(t.number) as Partial<TrialRow>) }));
      if (o) out.push(o);
    }
    return out;
  }

  /** Stops (PRUNED), rung values: stored with the trials, in the round's transaction. */
  private async storeDecision(
    tx: Parameters<Parameters<Store['write']>[0]>[0],
    r: Round,
    decision: SchedulerDecision,
    updates: Map<number, TrialPatch>,
    events: NewEvent[],
  ): Promise<void> {
    const byNumber = new Map(r.trials.map((t) => [t.number, t]));
    for (const rec of decision.record) {
      const t = byNumber.get(rec.number);
      if (!t) continue;
      const rungs = { ...(JSON.parse(t.rungs) as Record<string, number>), ...rec.rungs };
      await sweepRepo.updateTrial(tx, r.sweep.id, t.number, {
        rungs: JSON.stringify(rungs),
        updated_at: r.now,
      });
    }
    for (const s of decision.stop) {
      const t = byNumber.get(s.number);
      if (!t) continue;
      const before = (updates.get(t.number)?.status ?? t.status) as TrialStatus;
      if (isFinalTrial(before)) continue;
      await sweepRepo.updateTrial(tx, r.sweep.id, t.number, {
        status: 'PRUNED',
        end_reason: 'pruned',
        error: s.reason,
        stop_requested_at: r.now,
        ended_at: r.now,
        updated_at: r.now,
      });
      events.push(trialEvent({ ...t, status: before }, 'PRUNED', s.reason, null));
    }
  }

  /**
   * Ends trials the scheduler stopped (or a stop of the sweep interrupted): first the run's
   * terminate command (the learner may save a checkpoint and exit cleanly), then, after the
   * sweep's stop_grace, its job.
   */
  private async executeStops(
    spec: SweepSpec,
    trials: readonly TrialRow[],
    states: ReadonlyMap<string, DispatchStatus>,
    now: number,
  ): Promise<void> {
    for (const t of trials) {
      if (t.stop_requested_at === null) continue;
      const refs = [t.train_ref, t.eval_ref].filter((ref): ref is string => {
        if (ref === null) return false;
        const s = states.get(ref)?.state ?? (ref === t.train_ref ? t.train_state : t.eval_state);
        return isDispatchActive(s as DispatchState);
      });
      if (refs.length === 0) continue;
      await this.terminateRun(t.run_id, t.error ?? 'stopped by the sweep');
      if (now - t.stop_requested_at < spec.stop_grace_ms) continue;
      for (const ref of refs) {
        const { dispatcher, id } = parseRef(ref);
        await this.dispatchers
          .get(dispatcher)
          ?.stop(id, t.error ?? 'stopped by the sweep')
          .catch((err: unknown) => {
            this.log.warn({ err, ref }, 'stopping a job failed');
          });
      }
    }
  }

  /** The run's terminate command, once (its id is derived from the run, so a repeat is a no-op). */
  private async terminateRun(runId: string, reason: string): Promise<void> {
    if (await retrying(() => commandRepo.hasTerminate(this.store.db, runId))) return;
    try {
      await this.commands.issue(
        runId,
        {
          id: uuidFrom(`sweep-terminate:${runId}`),
          type: 'terminate',
          issued_at: new Date(this.clock.now()).toISOString(),
          actor: { type: 'system', id: 'sweep-controller' },
          payload: { reason: reason.slice(0, 256), final_checkpoint: true },
        },
        null,
      );
    } catch (err) {
      // An ended run takes no command: nothing to stop.
      if (!(err instanceof AppError)) throw err;
    }
  }

  /** A given-up attempt's run ends as failed (its job is stopped separately). */
  private async endRun(runId: string, why: string): Promise<void> {
    const run = await retrying(() => runRepo.get(this.store.db, runId));
    if (!run || ['completed', 'failed', 'terminated'].includes(run.status as RunStatus)) return;
    await this.runs
      .finish(runId, { status: 'failed', error: why.slice(0, 1000) }, null, null)
      .catch((err: unknown) => {
        if (!(err instanceof AppError)) throw err;
      });
  }

  private checkpointDir(spec: SweepSpec, sweepId: string, number: number): string {
    return join(spec.checkpoint_dir ?? this.opts.checkpointDir, sweepId, `trial-${number}`);
  }

  /** Launches a job of a trial and records its ref. A dispatcher that is down leaves it pending. */
  private async launch(
    sweep: SweepRow,
    spec: SweepSpec,
    t: TrialRow,
    kind: 'train' | 'eval',
  ): Promise<string | null> {
    const task = kind === 'train' ? spec.train : spec.eval;
    if (!task) return null;
    const params = JSON.parse(t.params) as Params;
    const checkpointDir = this.checkpointDir(spec, sweep.id, t.number);
    const maxT = 'max_t' in spec.scheduler ? (spec.scheduler as { max_t: number }).max_t : null;
    const values: Record<string, string | number | boolean | null> = {
      ...params,
      trial: t.number,
      attempt: t.attempt,
      run_id: t.run_id,
      sweep_id: sweep.id,
      checkpoint_dir: checkpointDir,
      resume_from: t.resume_from ?? '',
      start_step: t.start_step,
      max_t: maxT,
      params_json: JSON.stringify(params),
    };
    const name = kind === 'train' ? trainJobName(sweep.id, t.number, t.attempt) : evalJobName(t.run_id);
    let candidates: Awaited<ReturnType<typeof route>>;
    try {
      candidates = await route(spec.dispatcher, kind, this.dispatchers);
    } catch (err) {
      if (err instanceof DispatcherUnavailable) {
        this.log.warn({ sweep: sweep.id, trial: t.number, err: err.message }, 'no dispatcher available');
        return null;
      }
      throw err;
    }
    for (const c of candidates) {
      try {
        const id = await c.dispatcher.launch({
          name,
          kind,
          sweepId: sweep.id,
          number: t.number,
          attempt: t.attempt,
          runId: t.run_id,
          command: renderCommand(task.command, values),
          env: {
            ...renderEnv(task, values),
            RUNPLANE_CHECKPOINT_DIR: checkpointDir,
            RUNPLANE_TRIAL_PARAMS: JSON.stringify(params),
            ...(t.resume_from ? { RUNPLANE_RESUME_FROM: t.resume_from } : {}),
            ...(maxT === null ? {} : { RUNPLANE_MAX_T: String(maxT) }),
            RUNPLANE_START_STEP: String(t.start_step),
          },
          cwd: task.cwd,
          resources: task.resources,
          maxRetries: task.max_retries,
          runToken: async () =>
            (await this.tokens.create('learner', `learner:${t.run_id}:${name}`, { runId: t.run_id })).token,
          options: c.options,
          taskType: sweepTaskType(spec),
        });
        const ref = makeRef(c.dispatcher.name, id);
        const now = this.clock.now();
        // Launched: a refusal recorded on an earlier round no longer holds the trial.
        const unblock: TrialPatch = t.error?.startsWith(LAUNCH_BLOCKED_PREFIX) ? { error: null } : {};
        await retrying(() =>
          this.store.write((tx) =>
            sweepRepo.updateTrial(
              tx,
              sweep.id,
              t.number,
              kind === 'train'
                ? { train_ref: ref, train_state: 'pending', activity_at: now, updated_at: now, ...unblock }
                : { eval_ref: ref, eval_state: 'pending', activity_at: now, updated_at: now, ...unblock },
            ),
          ),
        );
        return ref;
      } catch (err) {
        if (err instanceof DispatcherUnavailable) {
          this.log.warn(
            { sweep: sweep.id, trial: t.number, dispatcher: c.dispatcher.name, err: err.message },
            'dispatcher unavailable; trying the next',
          );
          continue;
        }
        throw err;
      }
    }
    return null;
  }

  /**
   * Records can_spawn's refusal with a waiting trial (once per reason: a trial blocked for many
   * rounds keeps the time it was first blocked for that reason).
   */
  private async markBlocked(sweepId: string, t: TrialRow, reason: string): Promise<void> {
    const error = `${LAUNCH_BLOCKED_PREFIX}${reason}`.slice(0, 1000);
    if (t.error === error) return;
    // Never over an error of another kind (the trial is waiting, so it has none today).
    if (t.error !== null && !t.error.startsWith(LAUNCH_BLOCKED_PREFIX)) return;
    const now = this.clock.now();
    await retrying(() =>
      this.store.write((tx) => sweepRepo.updateTrial(tx, sweepId, t.number, { error, updated_at: now })),
    );
  }

  /**
   * Trial jobs of a task type that are waiting or running outside runplane's job table (the local
   * and Slurm dispatchers), across every active sweep: can_spawn counts the job table itself.
   */
  private async activeOutsideJobTable(taskType: string): Promise<number> {
    const ids = await retrying(() => sweepRepo.activeIds(this.store.db, ACTIVE_SWEEP_STATUSES));
    const sweeps = await retrying(() => sweepRepo.getMany(this.store.db, ids));
    const ofType = sweeps
      .filter((s) => {
        const spec = JSON.parse(s.spec) as SweepSpec;
        return sweepTaskType(spec) === taskType && spec.dispatcher.type !== 'workers';
      })
      .map((s) => s.id);
    if (ofType.length === 0) return 0;
    let n = 0;
    for (const t of await retrying(() => sweepRepo.trialsOfSweeps(this.store.db, ofType))) {
      for (const [ref, state] of [
        [t.train_ref, t.train_state],
        [t.eval_ref, t.eval_state],
      ] as const) {
        if (
          ref !== null &&
          parseRef(ref).dispatcher !== 'workers' &&
          isDispatchActive(state as DispatchState)
        )
          n++;
      }
    }
    return n;
  }

  private async refuse(sweepId: string, t: TrialRow, why: string): Promise<void> {
    const now = this.clock.now();
    await retrying(() =>
      this.store.write(async (tx) => {
        await sweepRepo.updateTrial(tx, sweepId, t.number, {
          status: 'FAILED',
          end_reason: 'failed',
          error: why,
          ended_at: now,
          updated_at: now,
        });
        await outboxRepo.append(tx, [trialEvent(t, 'FAILED', why, null)], now);
      }),
    );
    await this.endRun(t.run_id, why);
  }

  /** running → completed once nothing is left; stopping → stopped once no job of it runs. */
  private async settle(
    sweep: SweepRow,
    spec: SweepSpec,
    decision: SchedulerDecision,
    exhausted: boolean,
  ): Promise<SweepStatus> {
    const trials = await retrying(() => sweepRepo.trials(this.store.db, sweep.id));
    const anyActive = trials.some(
      (t) =>
        isDispatchActive(t.train_state as DispatchState) || isDispatchActive(t.eval_state as DispatchState),
    );
    const allFinal = trials.every((t) => isFinalTrial(t.status as TrialStatus));
    const current = sweep.status as SweepStatus;
    let next: SweepStatus = current;
    let reason: string | null = null;
    if (current === 'stopping' && !anyActive) {
      next = 'stopped';
      reason = sweep.status_reason ?? 'stopped by request';
    } else if (
      current === 'running' &&
      (decision.finished || exhausted) &&
      allFinal &&
      !anyActive &&
      decision.spawn.length === 0
    ) {
      const completed = trials.filter((t) => t.status === 'COMPLETED').length;
      next = completed > 0 || trials.length === 0 ? 'completed' : 'failed';
      reason =
        next === 'completed' ? `${trials.length} trials, ${completed} completed` : 'no trial completed';
      void spec;
    }
    if (next === current) return current;
    const now = this.clock.now();
    await retrying(() =>
      this.store.write(async (tx) => {
        const fresh = await sweepRepo.get(tx, sweep.id);
        if (!fresh || fresh.status !== current) return;
        await sweepRepo.update(tx, sweep.id, {
          status: next,
          status_reason: reason,
          finished_at: now,
          updated_at: now,
          lease_owner: null,
          lease_until: null,
        });
        await outboxRepo.append(
          tx,
          [
            event('sweep.status_changed', sweep.id, {
              sweep_id: sweep.id,
              status: next,
              previous: current,
              reason,
            }),
          ],
          now,
        );
      }),
    );
    this.optimizers.delete(sweep.id);
    return next;
  }
}

function trialEvent(t: TrialRow, status: TrialStatus, reason: string | null, values: number[] | null) {
  return event('sweep.trial_status_changed', t.sweep_id, {
    sweep_id: t.sweep_id,
    number: t.number,
    run_id: t.run_id,
    status,
    previous: t.status,
    reason,
    values,
  });
}

function trialFacts(t: TrialRow) {
  return {
    number: t.number,
    params: JSON.parse(t.params) as Params,
    status: t.status as TrialStatus,
    values: t.objective_values ? (JSON.parse(t.objective_values) as number[]) : null,
    cost: t.cost,
  };
}

function bestOf(trials: readonly TrialRow[], updates: ReadonlyMap<number, TrialPatch>, spec: SweepSpec) {
  const direction = spec.objectives[0]?.direction ?? 'minimize';
  return bestTrial(
    trials.map((t) => trialFacts({ ...t, ...(updates.get(t.number) as Partial<TrialRow>) })),
    direction,
  );
}

function baseAttempt(sweep: SweepRow, spec: SweepSpec, number: number): NewAttempt {
  return {
    sweepId: sweep.id,
    sweepName: sweep.name,
    number,
    attempt: 0,
    params: {},
    origin: spec.optimizer.type,
    parentNumber: null,
    member: null,
    bracket: null,
    startStep: 0,
    resumeFrom: null,
    labels: spec.labels,
  };
}

function renderEnv(
  task: TaskSpec,
  values: Record<string, string | number | boolean | null>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(task.env)) out[k] = renderCommand([v], values)[0] ?? '';
  return out;
}

/** The trial's cost: the cost metric's last value, else the run's duration in seconds. */
function costOf(
  spec: SweepSpec,
  summary: Record<string, number>,
  run: RunRow | undefined,
  now: number,
): number | null {
  if (spec.cost_metric) return summary[spec.cost_metric] ?? null;
  if (!run) return null;
  return ((run.ended_at ?? now) - run.created_at) / 1000;
}

/** A UUID v4-shaped id derived from a string (the same string, the same id). */
export function uuidFrom(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  const variant = ((Number.parseInt(h[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
