import type { Logger } from 'pino';
import type { Assignment, AttemptReport, ReportRequest } from '../jobs/schemas.js';
import { sleep } from '../shared/sleep.js';
import { type ControllerLink, isUnknownWorker } from './link.js';
import { Supervisor, type SupervisorEvent } from './supervisor.js';

export interface AgentOptions {
  name: string;
  capacity: { cpu: number; memory_mb: number; gpu: number };
  deviceType: string | null;
  labels: Record<string, string>;
  address: string | null;
  workDir: string;
  killGraceMs: number;
  /** How long one assignment long-poll may wait. */
  pollWaitMs?: number;
}

type LogItem = NonNullable<ReportRequest['logs']>[number];
const MAX_LOG_BATCH_BYTES = 512 * 1024;
const REPORT_DELAY_MS = 3;

/**
 * The worker agent: registers, heartbeats on its own timer, long-polls for assignments,
 * runs them through the supervisor and reports state changes. Reports are batched: while
 * one report is in flight, new ones queue and go together next (group commit on the
 * controller), so a burst of short jobs costs few round trips.
 */
export class WorkerAgent {
  private workerId: string | null = null;
  private heartbeatMs = 5000;
  private stopping = false;
  private readonly abort = new AbortController();
  private readonly supervisor: Supervisor;
  private queue: AttemptReport[] = [];
  private logs: LogItem[] = [];
  /** Attempts that ended but whose final report is not yet acknowledged. */
  private readonly unacked = new Set<string>();
  /** Attempts this agent was told to kill and is stopping now. */
  private readonly stoppingAttempts = new Set<string>();
  private flushing: Promise<void> | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private pollLoop: Promise<void> | null = null;
  private registering: Promise<void> | null = null;
  /**
   * What every job inherits from the agent's environment, read once (reading process.env walks
   * the C environment on every access): not the agent's own RUNPLANE_ settings, and not the
   * trace context it was started in (a job's TRACEPARENT is its own, set by the controller).
   */
  private readonly baseEnv: Record<string, string> = Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] =>
        e[1] !== undefined &&
        !e[0].startsWith('RUNPLANE_') &&
        e[0] !== 'TRACEPARENT' &&
        e[0] !== 'TRACESTATE',
    ),
  );

  constructor(
    private readonly link: ControllerLink,
    private readonly opts: AgentOptions,
    private readonly log: Logger,
  ) {
    this.supervisor = new Supervisor({
      workDir: opts.workDir,
      killGraceMs: opts.killGraceMs,
      onEvent: (ev) => this.onSupervisorEvent(ev),
    });
  }

  get id(): string | null {
    return this.workerId;
  }

  async start(): Promise<void> {
    const reaped = await this.supervisor.reapLeftovers();
    if (reaped.length > 0)
      this.log.warn({ attempts: reaped }, 'killed processes left by a previous run of this worker');
    await this.register();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.heartbeatMs);
    this.pollLoop = this.runPollLoop();
  }

  /** Graceful stop: running attempts are stopped and reported as lost (they will be retried). */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.abort.abort();
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await this.supervisor.killAll('worker shutting down');
    this.supervisor.close();
    await this.pollLoop?.catch(() => undefined);
    await this.drainReports();
    if (this.workerId) {
      try {
        await this.link.deregister(this.workerId);
      } catch (err) {
        this.log.warn({ err }, 'could not deregister');
      }
    }
  }

  private async register(): Promise<void> {
    if (this.registering !== null) return this.registering;
    this.registering = (async () => {
      for (let delay = 500; !this.stopping; delay = Math.min(delay * 2, 10_000)) {
        try {
          const r = await this.link.register({
            name: this.opts.name,
            capacity: this.opts.capacity,
            device_type: this.opts.deviceType,
            labels: this.opts.labels,
            ...(this.opts.address ? { address: this.opts.address } : {}),
            running: this.supervisor.active(),
          });
          this.workerId = r.worker_id;
          this.heartbeatMs = r.heartbeat_interval_ms;
          this.log.info({ worker_id: r.worker_id, name: this.opts.name }, 'worker registered');
          return;
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'registration failed; retrying');
          await sleep(delay);
        }
      }
    })().finally(() => {
      this.registering = null;
    });
    return this.registering;
  }

  private async heartbeat(): Promise<void> {
    if (!this.workerId || this.stopping) return;
    try {
      await this.link.heartbeat(this.workerId);
    } catch (err) {
      if (isUnknownWorker(err)) await this.register();
      else this.log.warn({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  private async runPollLoop(): Promise<void> {
    let delay = 250;
    while (!this.stopping) {
      const id = this.workerId;
      if (!id) {
        await this.register();
        continue;
      }
      try {
        const known = [...new Set([...this.supervisor.active(), ...this.unacked])];
        const stopping = [...this.stoppingAttempts];
        const res = await this.link.poll(
          id,
          known,
          stopping,
          this.opts.pollWaitMs ?? 30_000,
          this.abort.signal,
        );
        delay = 250;
        for (const k of res.kill) {
          if (this.supervisor.active().includes(k.attempt_id)) this.stoppingAttempts.add(k.attempt_id);
          this.supervisor.kill(k.attempt_id, k.reason);
        }
        for (const a of res.assignments) this.launch(a);
      } catch (err) {
        if (this.stopping) return;
        if (isUnknownWorker(err)) {
          await this.register();
          continue;
        }
        this.log.warn({ err: (err as Error).message }, 'poll failed; retrying');
        await sleep(delay);
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  private launch(a: Assignment): void {
    if (this.stopping || this.unacked.has(a.attempt_id)) return;
    const env: Record<string, string> = { ...this.baseEnv };
    Object.assign(env, a.env, {
      RUNPLANE_JOB_ID: a.job_id,
      RUNPLANE_ATTEMPT_ID: a.attempt_id,
      RUNPLANE_CONTROLLER_URL: this.link.controllerUrl,
      ...(a.run_id ? { RUNPLANE_RUN_ID: a.run_id } : {}),
    });
    const started = this.supervisor.start({
      attempt_id: a.attempt_id,
      job_id: a.job_id,
      command: a.command,
      env,
      cwd: a.cwd,
      setup: a.setup,
    });
    if (started) this.log.debug({ attempt: a.attempt_id }, 'attempt started');
  }

  private onSupervisorEvent(ev: SupervisorEvent): void {
    switch (ev.type) {
      case 'running':
        this.queue.push({ attempt_id: ev.attempt_id, state: 'RUNNING' });
        break;
      case 'output':
        this.logs.push({ attempt_id: ev.attempt_id, stream: ev.stream, data: ev.data });
        break;
      case 'exited': {
        // Stopped because this agent is going away: lost work, which the controller retries
        // as a preemption, not a kill the user asked for.
        const lost = this.stopping && ev.outcome === 'KILLED';
        this.stoppingAttempts.delete(ev.attempt_id);
        this.unacked.add(ev.attempt_id);
        this.queue.push({
          attempt_id: ev.attempt_id,
          state: lost ? 'WORKER_FAILED' : ev.outcome,
          exit_code: ev.exit_code,
          reason: lost ? 'worker shutting down' : ev.reason,
        });
        break;
      }
    }
    this.flush();
  }

  /**
   * Sends queued reports after a short pause, so a process that starts and exits within it is
   * reported in one batch (RUNNING and its exit together) and bursts share one transaction.
   */
  private flush(): void {
    if (this.flushing || this.flushTimer || (this.queue.length === 0 && this.logs.length === 0)) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flushing = this.sendOnce().finally(() => {
        this.flushing = null;
        this.flush();
      });
    }, REPORT_DELAY_MS);
  }

  private async sendOnce(): Promise<void> {
    const updates = this.queue;
    this.queue = [];
    const logs: LogItem[] = [];
    let bytes = 0;
    while (this.logs.length > 0 && bytes < MAX_LOG_BATCH_BYTES) {
      const item = this.logs.shift()!;
      bytes += item.data.length;
      logs.push(item);
    }
    for (let delay = 200; ; delay = Math.min(delay * 2, 5000)) {
      const id = this.workerId;
      try {
        if (!id) throw new Error('not registered');
        await this.link.report(id, { updates, ...(logs.length > 0 ? { logs } : {}) });
        for (const u of updates) if (u.state !== 'RUNNING') this.unacked.delete(u.attempt_id);
        return;
      } catch (err) {
        if (isUnknownWorker(err)) await this.register();
        else this.log.warn({ err: (err as Error).message }, 'report failed; retrying');
        if (this.stopping && this.abort.signal.aborted && delay >= 5000) {
          // Shutting down and the controller is unreachable: what is unreported is retried by
          // the controller when this worker times out.
          return;
        }
        await sleep(delay);
      }
    }
  }

  private async drainReports(): Promise<void> {
    for (let i = 0; i < 100 && (this.flushing || this.queue.length > 0 || this.logs.length > 0); i++) {
      this.flush();
      await sleep(REPORT_DELAY_MS + 1);
      await this.flushing;
    }
  }
}
