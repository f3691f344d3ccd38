/**
 * The TypeScript learner client: what a training process uses to report its progress to
 * runplane and to obey its control commands.
 *
 * - Heartbeats go out on a timer at the controller's cadence (`next_heartbeat_s` of each
 *   answer), carrying the state the trainer last set with `update()`.
 * - Commands arrive through a long-poll loop (`commands/next`) and are handled one at a time,
 *   in order; each is acknowledged after its handler returns. Delivery is at least once, so a
 *   command id already handled is acknowledged again without running its handler twice.
 * - 429 answers are retried after their Retry-After (never sooner), 5xx and network errors
 *   with exponential backoff and jitter.
 * - `close()` stops both loops, sends a final heartbeat if the state changed since the last
 *   accepted one, and finishes the run; afterwards no timer or request of the learner is left.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { FinishStatus, HeartbeatStatus } from '../runs/model.js';
import type { CommandView, Heartbeat, HeartbeatAccepted, RunView } from '../runs/schemas.js';
import { ApiError, RunplaneClient } from './client.js';

export type { FinishStatus, HeartbeatStatus };

export interface TunePayload {
  learning_rate?: number;
  entropy_coef?: number;
  clip_epsilon?: number;
  notes?: string;
}

export interface TerminatePayload {
  reason: string;
  final_checkpoint?: boolean;
}

/** What the heartbeats report; set by the trainer with `update()`. */
export interface LearnerState {
  status: HeartbeatStatus;
  step: number;
  samples_per_sec: number;
  loss: number;
  checkpoint_version: number;
}

/** A command handler; a returned promise is awaited before the command is acknowledged. */
type Handler<P> = (payload: P, command: CommandView) => unknown;

/** The timer functions the learner uses; tests pass a fake to step through time. */
export interface LearnerTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const REAL_TIMERS: LearnerTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface LearnerOptions {
  /** Default: $RUNPLANE_CONTROLLER_URL. */
  controllerUrl?: string;
  /** Default: $RUNPLANE_RUN_ID. */
  runId?: string;
  /** The run's learner token. Default: $RUNPLANE_RUN_TOKEN. */
  token?: string;
  /**
   * The HTTP client to use instead of one built from the URL and token (e.g. one with its own
   * fetch settings); its token must be the run's learner token or an operator's.
   */
  client?: RunplaneClient;
  /** Where the defaults above are read from (default process.env). */
  env?: Record<string, string | undefined>;
  /** The state before the first update() (default: running, step 0, loss 0, ...). */
  initial?: Partial<LearnerState>;
  /** How long one long-poll for commands waits, in seconds (1..60, default 30). */
  commandWaitS?: number;
  /** Limit for one request other than the long-poll, in milliseconds (default 30 s). */
  requestTimeoutMs?: number;
  /** Called with every failed request or handler (default: one line on stderr). */
  onError?: (err: Error, during: string) => void;
  timers?: LearnerTimers;
  /** Random source for jitter, in [0, 1). */
  random?: () => number;
}

/** Exponential backoff with "equal jitter": half fixed, half random, so retries spread. */
export function backoffMs(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  const d = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 20));
  return d / 2 + (random() * d) / 2;
}

/** Set while a command handler runs: close() called from one must not wait for the handler. */
const inHandler = new AsyncLocalStorage<boolean>();

const retryable = (err: unknown): err is ApiError =>
  err instanceof ApiError && (err.status === 0 || err.status === 429 || err.status >= 500);

export class Learner {
  readonly runId: string;
  readonly client: RunplaneClient;
  /** The controller's cadence, from the last heartbeat answer. */
  heartbeatIntervalS = 15;
  /** Accepted heartbeats so far. */
  heartbeatsSent = 0;
  /** The run's status and health as the controller gave them in its last heartbeat answer. */
  serverStatus: HeartbeatAccepted['run'] | null = null;
  /** The tunables received so far, merged. */
  readonly hyperparameters: Omit<TunePayload, 'notes'> = {};
  /** The terminate command's payload once one arrived. */
  terminateRequest: TerminatePayload | null = null;
  paused = false;
  lastError: Error | null = null;

  private readonly state: LearnerState;
  private notes: string | undefined;
  private readonly timers: LearnerTimers;
  private readonly random: () => number;
  private readonly commandWaitS: number;
  private readonly requestTimeoutMs: number;
  private readonly onErrorFn: (err: Error, during: string) => void;
  private readonly handlers: {
    tune?: Handler<TunePayload>;
    pause?: Handler<Record<string, never>>;
    resume?: Handler<Record<string, never>>;
    terminate?: Handler<TerminatePayload>;
  } = {};

  /** Received and not yet acknowledged: reported as `queued_commands`. */
  private readonly queued = new Set<string>();
  /** Handler already ran: a redelivery is only acknowledged. */
  private readonly handled = new Set<string>();
  private lastSent: string | null = null;

  private started = false;
  private closing = false;
  private closed: Promise<RunView | null> | null = null;
  private heartbeatTimer: unknown = null;
  private heartbeatFailures = 0;
  private heartbeatInFlight: Promise<void> | null = null;
  private commandLoopDone: Promise<void> | null = null;
  private readonly aborts = new Set<AbortController>();
  private readonly sleeps = new Map<unknown, () => void>();
  private pauseWaiters: Array<() => void> = [];

  constructor(opts: LearnerOptions = {}) {
    const env = opts.env ?? process.env;
    const url = opts.controllerUrl ?? env.RUNPLANE_CONTROLLER_URL;
    const runId = opts.runId ?? env.RUNPLANE_RUN_ID;
    const token = opts.token ?? env.RUNPLANE_RUN_TOKEN;
    if (!runId || (!opts.client && (!url || !token)))
      throw new Error(
        'the controller URL, run id and run token are needed: pass them or set ' +
          'RUNPLANE_CONTROLLER_URL, RUNPLANE_RUN_ID and RUNPLANE_RUN_TOKEN',
      );
    this.runId = runId;
    this.client = opts.client ?? new RunplaneClient(url ?? '', token ?? null);
    this.state = {
      status: 'running',
      step: 0,
      samples_per_sec: 0,
      loss: 0,
      checkpoint_version: 0,
      ...opts.initial,
    };
    this.timers = opts.timers ?? REAL_TIMERS;
    this.random = opts.random ?? Math.random;
    // At least 1 s: a zero wait would turn the command loop into a busy loop.
    this.commandWaitS = Math.max(1, Math.min(60, opts.commandWaitS ?? 30));
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.onErrorFn =
      opts.onError ??
      ((err, during) => process.stderr.write(`runplane learner: ${during}: ${err.message}\n`));
  }

  // handlers: each returns the learner, so they chain

  /** Called with the tune payload; `hyperparameters` already holds the new values. */
  onTune(h: Handler<TunePayload>): this {
    this.handlers.tune = h;
    return this;
  }
  /** Called on pause, after `paused` was set and the reported status became "paused". */
  onPause(h: Handler<Record<string, never>>): this {
    this.handlers.pause = h;
    return this;
  }
  /** Called on resume, after `paused` was cleared and the status is "running" again. */
  onResume(h: Handler<Record<string, never>>): this {
    this.handlers.resume = h;
    return this;
  }
  /** Called with the terminate payload, after `shouldStop` became true and the status "terminating". */
  onTerminate(h: Handler<TerminatePayload>): this {
    this.handlers.terminate = h;
    return this;
  }

  // the trainer's side

  /** Sets what the next heartbeat reports. `step` and `checkpoint_version` must never go down. */
  update(s: Partial<LearnerState> & { notes?: string }): void {
    const { notes, ...rest } = s;
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) Object.assign(this.state, { [k]: v });
    if (notes !== undefined) this.notes = notes;
  }

  get current(): Readonly<LearnerState> {
    return { ...this.state };
  }

  /** True once a terminate command arrived or close() began. */
  get shouldStop(): boolean {
    return this.terminateRequest !== null || this.closing;
  }

  /** The ids reported as `queued_commands`: received, not yet acknowledged. */
  get queuedCommands(): string[] {
    return [...this.queued];
  }

  /** Resolves at once unless paused; else when resumed, terminated or closed. */
  waitWhilePaused(): Promise<void> {
    if (!this.paused || this.shouldStop) return Promise.resolve();
    return new Promise((r) => this.pauseWaiters.push(r));
  }

  /** Posts metric values at `step` (retrying 429/5xx/network errors); returns how many were accepted. */
  async reportMetrics(step: number, values: Record<string, number>, retries = 5): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.withTimeout(this.requestTimeoutMs, (signal) =>
          this.client.postMetrics(this.runId, { step, values }, signal),
        );
        return res.accepted;
      } catch (err) {
        if (!retryable(err) || attempt >= retries || this.closing) throw err;
        await this.sleep(this.retryDelayMs(err, attempt, 250, 5000));
      }
    }
  }

  // lifecycle

  /**
   * Sends the first heartbeat (a refused one, e.g. a wrong token or run id, rejects) and
   * starts the heartbeat timer and the command loop.
   */
  async start(): Promise<this> {
    if (this.started) return this;
    if (this.closed !== null) throw new Error('the learner is closed');
    let firstDelayMs: number;
    try {
      await this.sendHeartbeat();
      firstDelayMs = this.heartbeatIntervalS * 1000;
    } catch (err) {
      // An unreachable or busy controller is not a reason to stop training; the timer retries.
      if (!retryable(err)) throw err;
      this.report(err, 'heartbeat');
      firstDelayMs = this.retryDelayMs(err, this.heartbeatFailures++, 500, 15_000);
    }
    this.started = true;
    this.scheduleHeartbeat(firstDelayMs);
    this.commandLoopDone = this.commandLoop();
    return this;
  }

  /**
   * Stops both loops (a command handler that is running is awaited), sends a final heartbeat
   * when the state changed since the last accepted one, and finishes the run with `status`:
   * "completed" by default, "terminated" by default after a terminate command. Resolves to
   * the run as the controller has it (null if the learner never started). Idempotent; may be
   * called from a handler.
   */
  close(opts: { status?: FinishStatus; error?: string } = {}): Promise<RunView | null> {
    this.closed ??= this.shutdown(opts);
    return this.closed;
  }

  private async shutdown(opts: { status?: FinishStatus; error?: string }): Promise<RunView | null> {
    const status = opts.status ?? (this.terminateRequest ? 'terminated' : 'completed');
    this.closing = true;
    if (this.heartbeatTimer !== null) this.timers.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
    for (const a of this.aborts) a.abort();
    for (const [handle, wake] of this.sleeps) {
      this.timers.clearTimeout(handle);
      wake();
    }
    this.sleeps.clear();
    this.releasePauseWaiters();
    // From inside a handler the command loop is waiting for that handler: do not wait back.
    if (!inHandler.getStore()) await this.commandLoopDone;
    await this.heartbeatInFlight;
    if (!this.started) return null;
    // Commands whose handler ran but whose ack failed: acknowledge them now, since no
    // redelivery will reach this learner any more.
    for (const id of [...this.queued].filter((q) => this.handled.has(q))) {
      try {
        await this.withTimeout(this.requestTimeoutMs, (signal) =>
          this.client.ackCommand(this.runId, id, signal),
        );
        this.queued.delete(id);
      } catch (err) {
        this.report(err, 'ack');
      }
    }
    // `closing` aborts requests of the loops; the final ones below are made as usual.
    if (JSON.stringify(this.heartbeatBody()) !== this.lastSent) await this.finalHeartbeat();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.withTimeout(this.requestTimeoutMs, (signal) =>
          this.client.finishRun(
            this.runId,
            { status, ...(opts.error ? { error: opts.error.slice(0, 16384) } : {}) },
            signal,
          ),
        );
      } catch (err) {
        if (!retryable(err) || attempt >= 5) {
          this.report(err, 'finish');
          return null;
        }
        await this.pause(this.retryDelayMs(err, attempt, 250, 5000));
      }
    }
  }

  // heartbeats

  private heartbeatBody(): Heartbeat {
    return {
      run_id: this.runId,
      ...this.state,
      queued_commands: [...this.queued],
      ...(this.notes !== undefined ? { notes: this.notes } : {}),
    };
  }

  private async sendHeartbeat(): Promise<void> {
    const body = this.heartbeatBody();
    const res = await this.withTimeout(this.requestTimeoutMs, (signal) =>
      this.client.heartbeat(this.runId, body, signal),
    );
    this.lastSent = JSON.stringify(body);
    this.heartbeatsSent++;
    this.serverStatus = res.run;
    if (typeof res.next_heartbeat_s === 'number' && res.next_heartbeat_s > 0)
      this.heartbeatIntervalS = res.next_heartbeat_s;
    // Ids the controller has seen acknowledged (or never knew) need not be reported again.
    for (const id of res.unknown_commands ?? []) if (this.handled.has(id)) this.queued.delete(id);
  }

  private scheduleHeartbeat(ms: number): void {
    if (this.closing) return;
    this.heartbeatTimer = this.timers.setTimeout(() => {
      this.heartbeatTimer = null;
      this.heartbeatInFlight = this.heartbeatTick();
    }, ms);
  }

  private async heartbeatTick(): Promise<void> {
    let delayMs: number;
    try {
      await this.sendHeartbeat();
      this.heartbeatFailures = 0;
      delayMs = this.heartbeatIntervalS * 1000;
    } catch (err) {
      if (this.closing) return;
      this.report(err, 'heartbeat');
      if (retryable(err)) {
        delayMs = this.retryDelayMs(err, this.heartbeatFailures++, 500, this.heartbeatIntervalS * 1000);
      } else {
        // 409 regression, 422, 404, 401: the trainer's next state may be valid again.
        delayMs = this.heartbeatIntervalS * 1000;
      }
    }
    this.scheduleHeartbeat(delayMs);
  }

  private async finalHeartbeat(): Promise<void> {
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        await this.sendHeartbeat();
        return;
      } catch (err) {
        if (!retryable(err) || attempt === 3) {
          this.report(err, 'final heartbeat');
          return;
        }
        await this.pause(Math.min(10_000, this.retryDelayMs(err, attempt, 250, 2000)));
      }
    }
  }

  // commands

  private async commandLoop(): Promise<void> {
    let failures = 0;
    while (!this.closing) {
      let command: CommandView | null;
      try {
        command = await this.withTimeout(this.commandWaitS * 1000 + this.requestTimeoutMs, (signal) =>
          this.client.nextCommand(this.runId, this.commandWaitS, signal),
        );
        failures = 0;
      } catch (err) {
        if (this.closing) return;
        this.report(err, 'commands/next');
        await this.sleep(this.retryDelayMs(err, failures++, 500, 15_000));
        continue;
      }
      if (command) await this.handle(command);
    }
  }

  private async handle(command: CommandView): Promise<void> {
    if (!this.handled.has(command.id)) {
      this.queued.add(command.id);
      this.apply(command);
      const handler = this.handlers[command.type] as Handler<unknown> | undefined;
      try {
        await inHandler.run(true, async () => handler?.(command.payload, command));
      } catch (err) {
        // Not acknowledged: the controller delivers it again after its visibility timeout.
        this.queued.delete(command.id);
        this.report(err, `${command.type} handler`);
        return;
      }
      this.handled.add(command.id);
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await this.withTimeout(this.requestTimeoutMs, (signal) =>
          this.client.ackCommand(this.runId, command.id, signal),
        );
        this.queued.delete(command.id);
        return;
      } catch (err) {
        // Left in queued_commands; the redelivery acknowledges it.
        if (this.closing || !retryable(err) || attempt >= 7) {
          if (!this.closing) this.report(err, 'ack');
          return;
        }
        await this.sleep(this.retryDelayMs(err, attempt, 250, 5000));
      }
    }
  }

  private apply(command: CommandView): void {
    switch (command.type) {
      case 'tune': {
        const { notes: _notes, ...tunables } = command.payload as TunePayload;
        Object.assign(this.hyperparameters, tunables);
        break;
      }
      case 'pause':
        this.paused = true;
        if (this.state.status === 'running') this.state.status = 'paused';
        break;
      case 'resume':
        this.paused = false;
        if (this.state.status === 'paused') this.state.status = 'running';
        this.releasePauseWaiters();
        break;
      case 'terminate':
        this.terminateRequest = { ...(command.payload as unknown as TerminatePayload) };
        this.state.status = 'terminating';
        this.releasePauseWaiters();
        break;
    }
  }

  private releasePauseWaiters(): void {
    const waiters = this.pauseWaiters;
    this.pauseWaiters = [];
    for (const w of waiters) w();
  }

  // plumbing

  /** Retry-After for a 429 (plus up to 10% jitter, never sooner), else backoff with jitter. */
  private retryDelayMs(err: unknown, attempt: number, baseMs: number, capMs: number): number {
    if (err instanceof ApiError && err.status === 429) {
      const after = (err.retryAfterS ?? 5) * 1000;
      return after + this.random() * Math.max(100, after * 0.1);
    }
    return backoffMs(attempt, baseMs, capMs, this.random);
  }

  /**
   * A request with its own deadline (a real timer, always cleared: the injected timers only
   * pace the loops), aborted by close() too.
   */
  private async withTimeout<T>(ms: number, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const abort = new AbortController();
    this.aborts.add(abort);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, ms);
    try {
      return await call(abort.signal);
    } catch (err) {
      if (timedOut) throw new ApiError(0, 'TIMEOUT', `no answer from ${this.client.baseUrl} within ${ms}ms`);
      throw err;
    } finally {
      clearTimeout(timer);
      this.aborts.delete(abort);
    }
  }

  /** A wait that close() cuts short. */
  private sleep(ms: number): Promise<void> {
    if (this.closing) return Promise.resolve();
    return new Promise((resolve) => {
      const handle = this.timers.setTimeout(() => {
        this.sleeps.delete(handle);
        resolve();
      }, ms);
      this.sleeps.set(handle, resolve);
    });
  }

  /** A wait during close() itself (final heartbeat, finish retries). */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const handle = this.timers.setTimeout(() => {
        this.sleeps.delete(handle);
        resolve();
      }, ms);
      this.sleeps.set(handle, resolve);
    });
  }

  private report(err: unknown, during: string): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.lastError = e;
    try {
      this.onErrorFn(e, during);
    } catch {
      // an error callback that throws must not stop the loops
    }
  }
}
