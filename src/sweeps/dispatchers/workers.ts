import { TASK_TYPE_LABEL } from '../../coordination/task-limiter.js';
import { jobRepo } from '../../jobs/job-repo.js';
import type { JobService } from '../../jobs/job-service.js';
import { AppError } from '../../shared/errors.js';
import type { Store } from '../../store/database.js';
import type { DispatchState } from '../model.js';
import type { Dispatcher, DispatchStatus, LaunchSpec } from './dispatcher.js';

const STATES: Record<string, DispatchState> = {
  PENDING: 'pending',
  BUILDING: 'running',
  RUNNING: 'running',
  SUCCEEDED: 'succeeded',
  FAILED: 'failed',
  WORKER_FAILED: 'failed',
  UNSCHEDULABLE: 'failed',
  KILLED: 'killed',
};

/**
 * The default dispatcher: runplane's own workers, through JobService (placement, retries,
 * process supervision). A training job is launched with the trial's run_id, so its learner gets
 * the run's token and the run ends with the job; an eval job gets a token of its own.
 */
export class WorkersDispatcher implements Dispatcher {
  readonly name = 'workers';

  constructor(
    private readonly store: Store,
    private readonly jobs: JobService,
  ) {}

  async launch(spec: LaunchSpec): Promise<string> {
    const labels = {
      'runplane.sweep': spec.sweepId,
      'runplane.trial': String(spec.number),
      'runplane.attempt': String(spec.attempt),
      'runplane.kind': spec.kind,
      // can_spawn counts the sweep's jobs against the limits of its task type.
      ...(spec.taskType ? { [TASK_TYPE_LABEL]: spec.taskType } : {}),
    };
    const env: Record<string, string> = {
      ...spec.env,
      RUNPLANE_SWEEP_ID: spec.sweepId,
      RUNPLANE_TRIAL_NUMBER: String(spec.number),
      RUNPLANE_TRIAL_ATTEMPT: String(spec.attempt),
    };
    if (spec.kind === 'eval') {
      // The run has ended with its training job, so the eval job is not linked to it; it
      // reports to the run with a learner token of its own.
      Object.assign(env, { RUNPLANE_RUN_ID: spec.runId, RUNPLANE_RUN_TOKEN: await spec.runToken() });
    }
    try {
      const { job_id } = await this.jobs.launch({
        name: spec.name,
        command: spec.command,
        env,
        ...(spec.cwd ? { cwd: spec.cwd } : {}),
        resources: spec.resources,
        labels,
        max_retries_failure: spec.maxRetries,
        ...(spec.kind === 'train' ? { run_id: spec.runId } : {}),
      });
      return job_id;
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'DUPLICATE_JOB_NAME') throw err;
      // Launched before a crash, not recorded: the job is there under its unique name.
      const found = await this.jobs.list({
        label: Object.entries(labels).map(([k, v]) => `${k}=${v}`),
        limit: 10,
      });
      const job = found.jobs.find((j) => j.name === spec.name);
      if (!job) throw err;
      return job.job_id;
    }
  }

  async status(ids: readonly string[]): Promise<Map<string, DispatchStatus>> {
    const out = new Map<string, DispatchStatus>();
    for (let i = 0; i < ids.length; i += 500) {
      for (const row of await jobRepo.getMany(this.store.db, ids.slice(i, i + 500))) {
        out.set(row.id, {
          state: STATES[row.state] ?? 'unknown',
          reason: row.reason,
          changedAt: row.updated_at,
        });
      }
    }
    for (const id of ids)
      if (!out.has(id)) out.set(id, { state: 'unknown', reason: 'no such job', changedAt: null });
    return out;
  }

  async stop(id: string, reason: string): Promise<void> {
    try {
      await this.jobs.terminate(id, reason);
    } catch (err) {
      if (!(err instanceof AppError) || err.status !== 404) throw err;
    }
  }

  async available(): Promise<boolean> {
    return true;
  }
}
