import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.js';

/**
 * Shared building blocks of the views: loading, errors, meters, key/value lists and labels. Tables,
 * paging, filters, state badges and confirmed actions are in components/.
 */

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload(): void;
  /** Replace the data locally (a live update), until the next load. */
  set(update: (prev: T | undefined) => T | undefined): void;
}

/**
 * Loads data for a view and reloads it when `deps` change; with `pollMs`, again that long after
 * each load ends (never two at once). A load superseded by a newer one is aborted and ignored.
 */
export function useLoad<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: readonly unknown[],
  opts: { pollMs?: number } = {},
): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      setLoading(true);
      try {
        const v = await loadRef.current(abort.signal);
        if (abort.signal.aborted) return;
        setData(v);
        setError(null);
      } catch (err) {
        if (abort.signal.aborted) return;
        setError(err);
      } finally {
        if (!abort.signal.aborted) {
          setLoading(false);
          if (opts.pollMs) timer = setTimeout(() => void run(), opts.pollMs);
        }
      }
    };
    void run();
    return () => {
      abort.abort();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [...deps, tick, opts.pollMs]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload, set: setData };
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  if (error instanceof ApiError) {
    return (
      <div class="error" role="alert">
        <strong>{error.code}</strong> {error.message}
        {error.details.length > 0 && (
          <ul>
            {error.details.map((d) => (
              <li key={`${d.field}:${d.code}`}>
                <code>{d.field}</code> {d.code}: {d.message}
              </li>
            ))}
          </ul>
        )}
      </div>
    );
  }
  return (
    <div class="error" role="alert">
      {String((error as Error)?.message ?? error)}
    </div>
  );
}

/** What a view shows when the server has no route for its area (that part is not running here). */
export function NotAvailable({ what }: { what: string }) {
  return (
    <div class="not-available" data-testid="not-available">
      <strong>{what}</strong> is not available on this server: its API answered 404 (no such route). It
      appears here once the controller runs that part.
    </div>
  );
}

/** Error, "not available", or loading, for a load; null when there is data to show. */
export function LoadState<T>({ state, what }: { state: Loaded<T>; what: string }) {
  if (state.error instanceof ApiError && state.error.routeMissing) return <NotAvailable what={what} />;
  if (state.error && state.data === undefined) return <ErrorBox error={state.error} />;
  if (state.data === undefined) return <p class="muted">Loading…</p>;
  return null;
}

/** A horizontal bar: `used` of `total`, with its numbers. */
export function Meter({ used, total, label }: { used: number; total: number; label: string }) {
  const frac = total > 0 ? Math.min(1, used / total) : 0;
  const tone = frac >= 0.9 ? 'bad' : frac >= 0.7 ? 'warn' : 'ok';
  return (
    <div class="meter" title={`${label}: ${used} of ${total}`}>
      <div class={`meter-fill tone-${tone}`} style={{ width: `${(frac * 100).toFixed(1)}%` }} />
      <span class="meter-label">{label}</span>
    </div>
  );
}

export function KeyValues({ rows }: { rows: Array<[string, ComponentChildren]> }) {
  return (
    <dl class="kv">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

export function Labels({ labels }: { labels: Record<string, string> }) {
  const e = Object.entries(labels);
  if (e.length === 0) return <span class="muted">—</span>;
  return (
    <span class="labels">
      {e.map(([k, v]) => (
        <span key={k} class="label">
          {k}={v}
        </span>
      ))}
    </span>
  );
}

/** Re-renders every `ms` (relative times such as "12 s ago"). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
