/**
 * Dispatchers: HOW a sweep's jobs run. Each one launches a job for a trial attempt (idempotent
 * for the same job name, so a controller killed between launching and recording finds the job
 * it launched), reports job states, and stops jobs. A job is known by a ref
 * `<dispatcher>:<id>` stored with the trial, so any controller process can look it up later.
 */
import type { DispatchState, TaskSpec } from '../model.js';

export interface LaunchSpec {
  /** Unique job name: `<sweep>-t<n>-a<attempt>` for training, `<run_id>_eval` for evaluation. */
  name: string;
  kind: 'train' | 'eval';
  sweepId: string;
  number: number;
  attempt: number;
  runId: string;
  command: string[];
  env: Record<string, string>;
  cwd: string | null;
  resources: TaskSpec['resources'];
  /** Job-level retries of a failed process (where the dispatcher has them). */
  maxRetries: number;
  /** A learner token for the run, for dispatchers that must hand it to the job themselves. */
  runToken(): Promise<string>;
  /** Per-sweep options of the chosen dispatcher (Slurm partition, time limit, extra args). */
  options: Record<string, unknown>;
  /**
   * What can_spawn limits the job under (the sweep's task_type, default `sweep_trial`); runplane's
   * workers label the job with it so cluster and node limits count it.
   */
  taskType?: string;
}

export interface DispatchStatus {
  state: DispatchState;
  reason: string | null;
  /** When the job last changed, if the dispatcher knows (a sign of life for STALE). */
  changedAt: number | null;
}

/** A dispatcher that cannot take a job now (down, or at its own concurrency cap). */
export class DispatcherUnavailable extends Error {
  constructor(
    readonly dispatcher: string,
    message: string,
  ) {
    super(message);
    this.name = 'DispatcherUnavailable';
  }
}

export interface Dispatcher {
  readonly name: string;
  /** Starts the job (or finds the one already started under this name); returns its id. */
  launch(spec: LaunchSpec): Promise<string>;
  /** States of jobs by id; an id the dispatcher has no record of is `unknown`. */
  status(ids: readonly string[]): Promise<Map<string, DispatchStatus>>;
  /** Stops a job (no-op when it has ended). */
  stop(id: string, reason: string): Promise<void>;
  /** Whether it can take jobs now (a pool falls back to the next member when not). */
  available(): Promise<boolean>;
  close?(): Promise<void>;
}

export function makeRef(dispatcher: string, id: string): string {
  return `${dispatcher}:${id}`;
}

export function parseRef(ref: string): { dispatcher: string; id: string } {
  const i = ref.indexOf(':');
  return i < 0 ? { dispatcher: 'workers', id: ref } : { dispatcher: ref.slice(0, i), id: ref.slice(i + 1) };
}

/** The environment every trial job gets, whichever dispatcher runs it. */
export function trialEnv(
  spec: LaunchSpec,
  controllerUrl: string,
  token: string | null,
): Record<string, string> {
  return {
    ...spec.env,
    RUNPLANE_SWEEP_ID: spec.sweepId,
    RUNPLANE_TRIAL_NUMBER: String(spec.number),
    RUNPLANE_TRIAL_ATTEMPT: String(spec.attempt),
    RUNPLANE_CONTROLLER_URL: controllerUrl,
    RUNPLANE_RUN_ID: spec.runId,
    ...(token === null ? {} : { RUNPLANE_RUN_TOKEN: token }),
  };
}
