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
import type { FieldError } from '../shared/errors.js';

/** An error answer of the API, with its stable code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: FieldError[] = [],
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
      throw new ApiError(
        res.status,
        e?.code ?? `HTTP_${res.status}`,
        e?.message ?? `HTTP ${res.status}`,
        e?.details ?? [],
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
}
