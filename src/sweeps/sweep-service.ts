import { randomInt } from 'node:crypto';
import { event } from '../events/catalog.js';
import { outboxRepo } from '../events/outbox-repo.js';
import type { Clock } from '../shared/clock.js';
import { AppError, conflict, invalid, notFound } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Store } from '../store/database.js';
import { type Analysis, analyze } from './analysis/analyze.js';
import { isFinalTrial, type SweepSpec, type SweepStatus, type TrialStatus } from './model.js';
import { createOptimizer } from './optimizers/index.js';
import type { SweepListQuery, SweepWire, TrialWire } from './schemas.js';
import { validateSweepFile } from './sweep-file.js';
import { type SweepRow, sweepRepo } from './sweep-repo.js';
import { nextAttempt, retryTrial } from './trial-runs.js';
import { sweepView, trialView } from './views.js';

/** How many of a trial's last reported objective values the significance test compares. */
const SIGNIFICANCE_SAMPLES = 10;

/** Use cases of sweeps: create, read, list, trials, analysis, stop, resume. */
export class SweepService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    /** Asks the controller loop for a round soon (after a create, stop or resume). */
    private readonly kick: () => void = () => undefined,
  ) {}

  async create(raw: unknown): Promise<SweepWire> {
    const checked = validateSweepFile(raw);
    if (!checked.ok) throw invalid(checked.errors, 'the sweep file is invalid');
    const spec = checked.spec;
    // A sweep without a seed gets one now, stored with its spec: its suggestions differ from
    // other unseeded sweeps' yet stay reproducible across restarts.
    spec.optimizer.seed ??= randomInt(0, 2 ** 31);
    try {
      // The optimizer's own options are checked by building it once.
      createOptimizer(
        spec.optimizer,
        spec.parameters,
        spec.objectives.map((o) => o.direction),
      );
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw invalid(
        [{ field: 'optimizer', code: 'UNAVAILABLE', message: (err as Error).message }],
        'the sweep file is invalid',
      );
    }
    const now = this.clock.now();
    const id = newId('swp', now);
    await this.store.write(async (tx) => {
      const earlier = await sweepRepo.getMany(tx, spec.warm_start);
      const missing = spec.warm_start.filter((s) => !earlier.some((e) => e.id === s));
      if (missing.length > 0) {
        throw invalid(
          missing.map((s) => ({
            field: 'warm_start',
            code: 'UNKNOWN_SWEEP',
            message: `sweep ${s} not found`,
          })),
        );
      }
      await sweepRepo.insert(tx, {
        id,
        name: spec.name,
        // Not canonical: the parameters keep the file's order (tables, CSV columns, grids).
        spec: JSON.stringify(spec),
        status: 'running',
        status_reason: null,
        trial_count: 0,
        best_trial: null,
        best_value: null,
        lease_owner: null,
        lease_until: null,
        last_error: null,
        exhausted_at: null,
        created_at: now,
        updated_at: now,
        finished_at: null,
      });
      await outboxRepo.append(
        tx,
        [
          event('sweep.created', id, {
            sweep_id: id,
            name: spec.name,
            optimizer: spec.optimizer.type,
            scheduler: spec.scheduler.type,
            max_trials: spec.max_trials,
          }),
        ],
        now,
      );
    });
    this.kick();
    return this.get(id);
  }

  async get(id: string): Promise<SweepWire> {
    const row = await sweepRepo.get(this.store.db, id);
    if (!row) throw notFound('sweep', id);
    return (await this.views([row]))[0] as SweepWire;
  }

  private async views(rows: SweepRow[]): Promise<SweepWire[]> {
    const counts = new Map<string, Record<string, number>>();
    for (const c of await sweepRepo.statusCounts(
      this.store.db,
      rows.map((r) => r.id),
    )) {
      const m = counts.get(c.sweep_id) ?? {};
      m[c.status] = c.n;
      counts.set(c.sweep_id, m);
    }
    const out: SweepWire[] = [];
    for (const r of rows) {
      const best =
        r.best_trial === null
          ? null
          : ((await sweepRepo.getTrial(this.store.db, r.id, r.best_trial)) ?? null);
      out.push(sweepView(r, counts.get(r.id) ?? {}, best));
    }
    return out;
  }

  async list(q: SweepListQuery): Promise<{ sweeps: SweepWire[]; next_cursor: string | null }> {
    const limit = q.limit ?? 100;
    const rows = await sweepRepo.list(this.store.db, {
      status: q.status,
      beforeSeq: q.cursor === undefined ? undefined : Number(q.cursor),
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      sweeps: await this.views(page),
      next_cursor: rows.length > limit && last ? String(last.seq) : null,
    };
  }

  async trials(id: string, status?: TrialStatus): Promise<{ sweep_id: string; trials: TrialWire[] }> {
    await this.mustGet(id);
    const rows = await sweepRepo.trials(this.store.db, id);
    return {
      sweep_id: id,
      trials: rows.filter((t) => status === undefined || t.status === status).map(trialView),
    };
  }

  async analysis(id: string, top = 10): Promise<Analysis & { sweep_id: string }> {
    const row = await this.mustGet(id);
    const spec = JSON.parse(row.spec) as SweepSpec;
    const trials = (await sweepRepo.trials(this.store.db, id)).map(trialView);
    const metric = spec.objectives[0]?.metric ?? '';
    // The significance test compares the two best trials' last reported objective values.
    const completed = trials.filter((t) => t.status === 'COMPLETED' && t.values);
    const samples = new Map<number, number[]>();
    const direction = spec.objectives[0]?.direction ?? 'minimize';
    const best2 = [...completed]
      .sort((a, b) => ((a.values?.[0] ?? 0) - (b.values?.[0] ?? 0)) * (direction === 'minimize' ? 1 : -1))
      .slice(0, 2);
    const series = await sweepRepo.series(
      this.store.db,
      best2.map((t) => t.run_id),
      [metric],
    );
    for (const t of best2) {
      const points = series.filter((p) => p.run_id === t.run_id).map((p) => p.value);
      samples.set(t.number, points.slice(-SIGNIFICANCE_SAMPLES));
    }
    const result = analyze(spec.parameters, spec.objectives, trials, {
      top,
      samples: (n) => samples.get(n) ?? [],
    });
    return { sweep_id: id, ...result };
  }

  /**
   * Stops a sweep: nothing new starts; trials still going are interrupted (their runs get a
   * terminate command, their jobs are stopped after the stop grace). `stopped` once no job of the
   * sweep runs any more.
   */
  async stop(id: string, reason = 'stopped by request'): Promise<SweepWire> {
    const now = this.clock.now();
    await this.store.write(async (tx) => {
      const row = await sweepRepo.get(tx, id);
      if (!row) throw notFound('sweep', id);
      const status = row.status as SweepStatus;
      if (status === 'stopping' || status === 'stopped') return;
      if (status !== 'running') throw conflict('SWEEP_ENDED', `sweep ${id} has already ended (${status})`);
      const events = [];
      for (const t of await sweepRepo.trials(tx, id)) {
        if (isFinalTrial(t.status as TrialStatus)) continue;
        await sweepRepo.updateTrial(tx, id, t.number, {
          status: 'FAILED',
          end_reason: 'interrupted',
          error: `interrupted: ${reason}`,
          stop_requested_at: now,
          ended_at: now,
          updated_at: now,
        });
        events.push(
          event('sweep.trial_status_changed', id, {
            sweep_id: id,
            number: t.number,
            run_id: t.run_id,
            status: 'FAILED',
            previous: t.status,
            reason: `interrupted: ${reason}`,
            values: null,
          }),
        );
      }
      await sweepRepo.update(tx, id, { status: 'stopping', status_reason: reason, updated_at: now });
      events.push(
        event('sweep.status_changed', id, { sweep_id: id, status: 'stopping', previous: status, reason }),
      );
      await outboxRepo.append(tx, events, now);
    });
    this.kick();
    return this.get(id);
  }

  /**
   * Resumes a stopped (or failed) sweep: trials a stop interrupted get a new attempt, and the
   * optimizer goes on from the next trial number up to max_trials.
   */
  async resume(id: string): Promise<SweepWire> {
    const now = this.clock.now();
    await this.store.write(async (tx) => {
      const row = await sweepRepo.get(tx, id);
      if (!row) throw notFound('sweep', id);
      const status = row.status as SweepStatus;
      if (status === 'running') return;
      if (status === 'stopping')
        throw conflict('SWEEP_STOPPING', `sweep ${id} is still stopping; resume it once stopped`);
      if (status === 'completed')
        throw conflict(
          'SWEEP_COMPLETED',
          `sweep ${id} has completed; start a new sweep (warm_start can reuse its trials)`,
        );
      const spec = JSON.parse(row.spec) as SweepSpec;
      for (const t of await sweepRepo.trials(tx, id)) {
        if (t.end_reason !== 'interrupted') continue;
        await retryTrial(tx, nextAttempt(row, spec.labels, t), now);
      }
      await sweepRepo.update(tx, id, {
        status: 'running',
        status_reason: 'resumed',
        finished_at: null,
        lease_owner: null,
        lease_until: null,
        updated_at: now,
      });
      await outboxRepo.append(
        tx,
        [
          event('sweep.status_changed', id, {
            sweep_id: id,
            status: 'running',
            previous: status,
            reason: 'resumed',
          }),
        ],
        now,
      );
    });
    this.kick();
    return this.get(id);
  }

  private async mustGet(id: string): Promise<SweepRow> {
    const row = await sweepRepo.get(this.store.db, id);
    if (!row) throw notFound('sweep', id);
    return row;
  }
}
