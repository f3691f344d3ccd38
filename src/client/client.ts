import type { HealthReport } from '../cluster/health.js';
import type { ModelView, RegisterModel } from '../coordination/model-service.js';
import type { PipelineView } from '../coordination/pipeline-views.js';
import type { QueueReading } from '../coordination/queue-monitor.js';
import type { SpawnDecision } from '../coordination/task-limits.js';
import type {
  DeadLetterListQuery,
  DeadLetterStatsWire,
  DeadLetterWire,
  EventTypesWire,
  PublishEventRequest,
  PublishedEvent,
} from '../events/schemas.js';
import type {
  EndpointRequest,
  EndpointView,
  JobListQuery,
  JobRequest,
  JobView,
  LogsQuery,
  PollResponse,
  ReportRequest,
  WorkerRegister,
  WorkerRegistered,
  WorkerView,
} from '../jobs/schemas.js';
import type {
  DispatchResponse,
  EpochView,
  Leaderboard,
  ParticipantUpdateResponse,
  PodConfigInput,
  PodCreate,
  PodListQuery,
  PodView,
  ReplayQuery,
  ReplayView,
  ResultsRequest,
  ResultsResponse,
} from '../pods/schemas.js';
import type {
  CommandEnvelope,
  CommandView,
  Finish,
  Heartbeat,
  HeartbeatAccepted,
  LivenessExtend,
  MetricsPost,
  MetricsQuery,
  MetricsView,
  RunCreate,
  RunListQuery,
  RunView,
} from '../runs/schemas.js';
import type { FieldError } from '../shared/errors.js';
import type { AnalysisWire, SweepListQuery, SweepWire, TrialWire } from '../sweeps/schemas.js';

/** An error answer of the API, with its stable code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: FieldError[] = [],
    /** Seconds the server asked to wait before retrying (its Retry-After header), if any. */
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type Query = Record<string, string | number | undefined | string[]>;

/** Typed client of the runplane HTTP API; used by the CLI, the worker agent and tests. */
export class RunplaneClient {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly token: string | null,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  async request<T>(
    method: string,
    path: string,
    opts: { body?: unknown; query?: Query; signal?: AbortSignal } = {},
  ): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v === undefined) continue;
      for (const item of Array.isArray(v) ? v : [v]) url.searchParams.append(k, String(item));
    }
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    // A job's process continues the trace it was launched in (TRACEPARENT, set by the controller).
    const traceparent = typeof process === 'undefined' ? undefined : process.env.TRACEPARENT;
    if (traceparent) headers.traceparent = traceparent;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new ApiError(
        0,
        'UNREACHABLE',
        `cannot reach ${this.baseUrl}: ${(err as Error).cause ?? (err as Error).message}`,
      );
    }
    const text = await res.text();
    const body =
      text && (res.headers.get('content-type') ?? '').includes('json') ? (JSON.parse(text) as unknown) : text;
    if (!res.ok) {
      const e = (body as { error?: { code?: string; message?: string; details?: FieldError[] } }).error;
      const retryAfter = Number(res.headers.get('retry-after') ?? Number.NaN);
      throw new ApiError(
        res.status,
        e?.code ?? `HTTP_${res.status}`,
        e?.message ?? `HTTP ${res.status}`,
        e?.details ?? [],
        Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : null,
      );
    }
    return body as T;
  }

  // jobs
  launchJob(req: JobRequest) {
    return this.request<{ job_id: string }>('POST', '/api/v1/jobs', { body: req });
  }
  getJob(id: string) {
    return this.request<JobView>('GET', `/api/v1/jobs/${encodeURIComponent(id)}`);
  }
  listJobs(q: JobListQuery = {}) {
    return this.request<{ jobs: JobView[]; next_cursor: string | null }>('GET', '/api/v1/jobs', {
      query: q as Query,
    });
  }
  terminateJob(id: string, reason?: string) {
    return this.request<JobView>(
      'POST',
      `/api/v1/jobs/${encodeURIComponent(id)}/terminate`,
      reason ? { body: { reason } } : {},
    );
  }
  jobLogs(id: string, q: LogsQuery = {}) {
    return this.request<{
      job_id: string;
      attempt_id: string | null;
      lines: Array<{ stream: string; line: string }>;
    }>('GET', `/api/v1/jobs/${encodeURIComponent(id)}/logs`, { query: q as Query });
  }

  // workers
  registerWorker(req: WorkerRegister) {
    return this.request<WorkerRegistered>('POST', '/api/v1/workers', { body: req });
  }
  listWorkers() {
    return this.request<{ workers: WorkerView[] }>('GET', '/api/v1/workers');
  }
  workerHeartbeat(id: string) {
    return this.request<null>('POST', `/api/v1/workers/${encodeURIComponent(id)}/heartbeat`);
  }
  deregisterWorker(id: string) {
    return this.request<null>('DELETE', `/api/v1/workers/${encodeURIComponent(id)}`);
  }
  poll(id: string, known: string[], waitMs: number, signal?: AbortSignal, stopping: string[] = []) {
    return this.request<PollResponse>('POST', `/api/v1/workers/${encodeURIComponent(id)}/poll`, {
      body: { known, stopping, wait_ms: waitMs },
      ...(signal ? { signal } : {}),
    });
  }
  report(id: string, body: ReportRequest) {
    return this.request<{ applied: number; ignored: number }>(
      'POST',
      `/api/v1/workers/${encodeURIComponent(id)}/reports`,
      { body },
    );
  }

  // endpoints
  registerEndpoint(req: EndpointRequest) {
    return this.request<EndpointView>('POST', '/api/v1/endpoints', { body: req });
  }
  unregisterEndpoint(id: string) {
    return this.request<null>('DELETE', `/api/v1/endpoints/${encodeURIComponent(id)}`);
  }
  findEndpoints(q: { name?: string; prefix?: string }) {
    return this.request<{ endpoints: EndpointView[] }>('GET', '/api/v1/endpoints', { query: q });
  }

  // tokens
  createToken(role: string, name?: string) {
    return this.request<{ token_id: string; token: string; role: string; name: string }>(
      'POST',
      '/api/v1/tokens',
      {
        body: { role, ...(name ? { name } : {}) },
      },
    );
  }
  listTokens() {
    return this.request<{
      tokens: Array<{
        token_id: string;
        name: string;
        role: string;
        created_at: string;
        revoked_at: string | null;
      }>;
    }>('GET', '/api/v1/tokens');
  }
  revokeToken(id: string) {
    return this.request<null>('DELETE', `/api/v1/tokens/${encodeURIComponent(id)}`);
  }
  // runs
  createRun(req: RunCreate = {}) {
    return this.request<{ run_id: string; token: string; run: RunView }>('POST', '/api/v1/runs', {
      body: req,
    });
  }
  getRun(id: string) {
    return this.request<RunView>('GET', `/api/v1/runs/${encodeURIComponent(id)}`);
  }
  listRuns(q: RunListQuery = {}) {
    return this.request<{ runs: RunView[]; next_cursor: string | null }>('GET', '/api/v1/runs', {
      query: q as Query,
    });
  }
  heartbeat(id: string, body: Heartbeat, signal?: AbortSignal) {
    return this.request<HeartbeatAccepted>('POST', `/api/v1/runs/${encodeURIComponent(id)}/heartbeat`, {
      body,
      ...(signal ? { signal } : {}),
    });
  }
  postMetrics(id: string, body: MetricsPost, signal?: AbortSignal) {
    return this.request<{ accepted: number }>('POST', `/api/v1/runs/${encodeURIComponent(id)}/metrics`, {
      body,
      ...(signal ? { signal } : {}),
    });
  }
  getMetrics(id: string, q: MetricsQuery = {}) {
    return this.request<MetricsView>('GET', `/api/v1/runs/${encodeURIComponent(id)}/metrics`, {
      query: q as Query,
    });
  }
  finishRun(id: string, body: Finish, signal?: AbortSignal) {
    return this.request<RunView>('POST', `/api/v1/runs/${encodeURIComponent(id)}/finish`, {
      body,
      ...(signal ? { signal } : {}),
    });
  }
  sendCommand(id: string, envelope: CommandEnvelope) {
    return this.request<CommandView>('POST', `/api/v1/runs/${encodeURIComponent(id)}/commands`, {
      body: envelope,
    });
  }
  /** Long-polls for the next command; null when `waitS` passed without one (204). */
  async nextCommand(id: string, waitS: number, signal?: AbortSignal): Promise<CommandView | null> {
    const res = await this.request<CommandView | ''>(
      'GET',
      `/api/v1/runs/${encodeURIComponent(id)}/commands/next`,
      { query: { wait: waitS }, ...(signal ? { signal } : {}) },
    );
    return res === '' || res === null ? null : res;
  }
  ackCommand(id: string, commandId: string, signal?: AbortSignal) {
    return this.request<CommandView>(
      'POST',
      `/api/v1/runs/${encodeURIComponent(id)}/commands/${encodeURIComponent(commandId)}/ack`,
      signal ? { signal } : {},
    );
  }
  listCommands(id: string) {
    return this.request<{ commands: CommandView[] }>(
      'GET',
      `/api/v1/runs/${encodeURIComponent(id)}/commands`,
    );
  }
  extendLiveness(id: string, body: LivenessExtend) {
    return this.request<RunView>('POST', `/api/v1/runs/${encodeURIComponent(id)}/liveness`, { body });
  }
  /**
   * Opens GET /stream/runs (server-sent events) and returns the response, whose body the
   * caller reads; an error answer throws ApiError like every other call.
   */
  async openRunStream(opts: { runId?: string; lastEventId?: string; signal?: AbortSignal } = {}) {
    const url = new URL(`${this.baseUrl}/api/v1/stream/runs`);
    if (opts.runId) url.searchParams.set('run_id', opts.runId);
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (opts.lastEventId) headers['last-event-id'] = opts.lastEventId;
    let res: Response;
    try {
      res = await fetch(url, { headers, ...(opts.signal ? { signal: opts.signal } : {}) });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new ApiError(0, 'UNREACHABLE', `cannot reach ${this.baseUrl}: ${(err as Error).message}`);
    }
    if (!res.ok || !res.body) {
      const body = (await res.json().catch(() => null)) as {
        error?: { code?: string; message?: string; details?: FieldError[] };
      } | null;
      throw new ApiError(
        res.status,
        body?.error?.code ?? `HTTP_${res.status}`,
        body?.error?.message ?? `HTTP ${res.status}`,
        body?.error?.details ?? [],
      );
    }
    return res;
  }

  // pods
  createPod(req: PodCreate) {
    return this.request<PodView>('POST', '/api/v1/pods', { body: req });
  }
  getPod(id: string) {
    return this.request<PodView>('GET', `/api/v1/pods/${encodeURIComponent(id)}`);
  }
  listPods(q: PodListQuery = {}) {
    return this.request<{ pods: PodView[]; next_cursor: string | null }>('GET', '/api/v1/pods', {
      query: q as Query,
    });
  }
  updatePodConfig(id: string, config: PodConfigInput) {
    return this.request<PodView>('PATCH', `/api/v1/pods/${encodeURIComponent(id)}`, { body: { config } });
  }
  dispatchPod(id: string) {
    return this.request<DispatchResponse>('POST', `/api/v1/pods/${encodeURIComponent(id)}/dispatch`);
  }
  postPodResults(id: string, body: ResultsRequest) {
    return this.request<ResultsResponse>('POST', `/api/v1/pods/${encodeURIComponent(id)}/results`, { body });
  }
  resetPod(id: string, reason?: string) {
    return this.request<PodView>('POST', `/api/v1/pods/${encodeURIComponent(id)}/reset`, {
      body: reason ? { reason } : {},
    });
  }
  archivePod(id: string) {
    return this.request<PodView>('POST', `/api/v1/pods/${encodeURIComponent(id)}/archive`);
  }
  podEpochs(id: string) {
    return this.request<{ epochs: EpochView[] }>('GET', `/api/v1/pods/${encodeURIComponent(id)}/epochs`);
  }
  /** The pod's training trace as NDJSON or CSV text (read as text: NDJSON is not one JSON document). */
  async podTrace(id: string, format: 'ndjson' | 'csv' = 'ndjson'): Promise<string> {
    const url = `${this.baseUrl}/api/v1/pods/${encodeURIComponent(id)}/trace?format=${format}`;
    let res: Response;
    try {
      res = await fetch(url, { headers: this.token ? { authorization: `Bearer ${this.token}` } : {} });
    } catch (err) {
      throw new ApiError(0, 'UNREACHABLE', `cannot reach ${this.baseUrl}: ${(err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) {
      const e = (
        JSON.parse(text || '{}') as { error?: { code?: string; message?: string; details?: FieldError[] } }
      ).error;
      throw new ApiError(
        res.status,
        e?.code ?? `HTTP_${res.status}`,
        e?.message ?? `HTTP ${res.status}`,
        e?.details ?? [],
      );
    }
    return text;
  }
  replays(q: ReplayQuery = {}) {
    return this.request<{ games: ReplayView[]; next_cursor: string | null }>('GET', '/api/v1/replays', {
      query: q as Query,
    });
  }
  leaderboard(limit?: number) {
    return this.request<Leaderboard>('GET', '/api/v1/leaderboard', { query: { limit } });
  }
  setParticipantVersion(participantId: string, modelVersion: string) {
    return this.request<ParticipantUpdateResponse>(
      'PUT',
      `/api/v1/participants/${encodeURIComponent(participantId)}`,
      { body: { model_version: modelVersion } },
    );
  }

  // events and the dead-letter queue
  publishEvent(req: PublishEventRequest) {
    return this.request<PublishedEvent>('POST', '/api/v1/events', { body: req });
  }
  eventTypes() {
    return this.request<EventTypesWire>('GET', '/api/v1/events/types');
  }
  listDeadLetters(q: DeadLetterListQuery = {}) {
    type Page = { dead_letters: DeadLetterWire[]; next_cursor: string | null };
    return this.request<Page>('GET', '/api/v1/dlq', { query: q as Query });
  }
  deadLetterStats() {
    return this.request<DeadLetterStatsWire>('GET', '/api/v1/dlq/stats');
  }
  getDeadLetter(id: string) {
    return this.request<DeadLetterWire>('GET', `/api/v1/dlq/${encodeURIComponent(id)}`);
  }
  retryDeadLetter(id: string) {
    return this.request<DeadLetterWire>('POST', `/api/v1/dlq/${encodeURIComponent(id)}/retry`);
  }

  // sweeps
  /** Starts a sweep from a sweep file's content (parsed YAML or JSON). */
  createSweep(file: Record<string, unknown>) {
    return this.request<SweepWire>('POST', '/api/v1/sweeps', { body: file });
  }
  listSweeps(q: SweepListQuery = {}) {
    return this.request<{ sweeps: SweepWire[]; next_cursor: string | null }>('GET', '/api/v1/sweeps', {
      query: q as Query,
    });
  }
  getSweep(id: string) {
    return this.request<SweepWire>('GET', `/api/v1/sweeps/${encodeURIComponent(id)}`);
  }
  sweepTrials(id: string, status?: string) {
    return this.request<{ sweep_id: string; trials: TrialWire[] }>(
      'GET',
      `/api/v1/sweeps/${encodeURIComponent(id)}/trials`,
      { query: { status } },
    );
  }
  sweepAnalysis(id: string, top?: number) {
    return this.request<AnalysisWire>('GET', `/api/v1/sweeps/${encodeURIComponent(id)}/analysis`, {
      query: { top },
    });
  }
  stopSweep(id: string, reason?: string) {
    return this.request<SweepWire>('POST', `/api/v1/sweeps/${encodeURIComponent(id)}/stop`, {
      body: reason ? { reason } : {},
    });
  }
  resumeSweep(id: string) {
    return this.request<SweepWire>('POST', `/api/v1/sweeps/${encodeURIComponent(id)}/resume`);
  }

  // Coordination: pipelines, models, can_spawn, queue monitors.
  /** Starts a pipeline from a pipeline file's text (YAML or JSON) or its parsed object. */
  startPipeline(file: string | Record<string, unknown>) {
    return this.request<PipelineView>('POST', '/api/v1/pipelines', {
      body: typeof file === 'string' ? { content: file } : file,
    });
  }
  listPipelines() {
    return this.request<{ pipelines: PipelineView[] }>('GET', '/api/v1/pipelines');
  }
  getPipeline(config: string) {
    return this.request<PipelineView>('GET', `/api/v1/pipelines/${encodeURIComponent(config)}`);
  }
  stopPipeline(config: string, reason?: string) {
    return this.request<PipelineView>('POST', `/api/v1/pipelines/${encodeURIComponent(config)}/stop`, {
      body: reason ? { reason } : {},
    });
  }
  listModels(q: { config?: string; state?: string; limit?: number } = {}) {
    return this.request<{ models: ModelView[] }>('GET', '/api/v1/models', { query: q });
  }
  productionModel(config: string) {
    return this.request<ModelView>('GET', '/api/v1/models/production', { query: { config } });
  }
  registerModel(req: RegisterModel) {
    return this.request<ModelView>('POST', '/api/v1/models', { body: req });
  }
  promoteModel(id: string, reason?: string) {
    return this.request<ModelView>('POST', `/api/v1/models/${encodeURIComponent(id)}/promote`, {
      body: reason ? { reason } : {},
    });
  }
  rollbackModel(id: string, reason?: string) {
    return this.request<{ rolled_back: ModelView; production: ModelView }>(
      'POST',
      `/api/v1/models/${encodeURIComponent(id)}/rollback`,
      { body: reason ? { reason } : {} },
    );
  }
  canSpawn(taskType: string, node?: string) {
    return this.request<SpawnDecision>('GET', '/api/v1/coordination/can-spawn', {
      query: { task_type: taskType, node },
    });
  }
  queues() {
    return this.request<{ status: string; issues: string[]; queues: QueueReading[] }>(
      'GET',
      '/api/v1/coordination/queues',
    );
  }

  // ----- health -----
  /** GET /api/v1/health: overall_health, status, components, issues, handler success rate. */
  health() {
    return this.request<HealthReport>('GET', '/api/v1/health');
  }
}
