/**
 * The dashboard's HTTP client: the same `/api/v1` routes the CLI calls, with the same bearer
 * token, so every action the dashboard takes is authorised and audited as the CLI's would be.
 */
export interface FieldDetail {
  field: string;
  code: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: FieldDetail[] = [],
  ) {
    super(message);
  }

  /**
   * The server has no such route (an area this server does not run yet): the router's
   * catch-all answers 404 NOT_FOUND "no route ...", unlike a missing resource (RUN_NOT_FOUND, ...).
   * The auth hook runs before it and refuses an unmatched route to a valid token as a route
   * that "takes no callers" (403): that is the same answer.
   */
  get routeMissing(): boolean {
    if (this.status === 404) return this.code === 'NOT_FOUND' && this.message.startsWith('no route');
    return this.status === 403 && this.code === 'FORBIDDEN' && this.message === 'this route takes no callers';
  }
}

export type Query = Record<string, string | number | boolean | null | undefined | string[]>;

export function queryString(q: Query = {}): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) for (const x of v) p.append(k, x);
    else p.append(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

export class Api {
  constructor(
    readonly token: string,
    private readonly onUnauthenticated: () => void = () => undefined,
  ) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.token}`, ...extra };
  }

  get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', `${path}${queryString(query)}`, undefined, signal);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body ?? {});
  }

  /** A text resource (e.g. `/metrics`). */
  async text(path: string, signal?: AbortSignal): Promise<string> {
    const res = await fetch(path, { headers: this.headers(), ...(signal ? { signal } : {}) });
    if (!res.ok) throw await this.error(res);
    return res.text();
  }

  private async request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await fetch(`/api/v1${path}`, {
      method,
      headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(signal ? { signal } : {}),
    });
    if (!res.ok) throw await this.error(res);
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  private async error(res: Response): Promise<ApiError> {
    let code = `HTTP_${res.status}`;
    let message = res.statusText || `HTTP ${res.status}`;
    let details: FieldDetail[] = [];
    try {
      const body = (await res.json()) as {
        error?: { code?: string; message?: string; details?: FieldDetail[] };
      };
      if (body.error) {
        code = body.error.code ?? code;
        message = body.error.message ?? message;
        details = body.error.details ?? [];
      }
    } catch {
      // not a JSON error body: keep the status line
    }
    if (res.status === 401) this.onUnauthenticated();
    return new ApiError(res.status, code, message, details);
  }
}

/** A UUID v4 for command envelopes; crypto.randomUUID exists only in secure contexts (https, localhost). */
export function uuidv4(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A part of the API this server may not run (yet), or this role may not read: undefined, not an error. */
export async function optional<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ApiError && (err.routeMissing || err.status === 403)) return undefined;
    throw err;
  }
}
