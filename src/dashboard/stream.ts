import type { Api } from './api.js';
import { SseParser } from './sse-parser.js';

export interface FollowOptions<T> {
  /** The SSE event name to pass on (others are ignored). */
  event: string;
  onEvent(data: T): void;
  /**
   * Called each time the stream is (re)established. After a reconnect the events missed while
   * down are replayed from Last-Event-ID, but a view must not trust that alone (the server may
   * have trimmed them): it reconciles from the REST API, as the stream is level-triggered.
   */
  onOpen?(reconnected: boolean): void;
  onState?(state: 'connecting' | 'live' | 'retrying'): void;
}

/**
 * Follows a server-sent-events endpoint with fetch() (the token goes in the Authorization
 * header, never in the URL), resuming with Last-Event-ID after any drop. Returns stop().
 */
export function follow<T>(api: Api, path: string, o: FollowOptions<T>): () => void {
  const abort = new AbortController();
  let lastEventId = '';
  let opened = false;
  let failures = 0;

  const once = async (): Promise<void> => {
    const parser = new SseParser();
    o.onState?.('connecting');
    const res = await fetch(`/api/v1${path}`, {
      headers: api.headers({
        accept: 'text/event-stream',
        ...(lastEventId ? { 'last-event-id': lastEventId } : {}),
      }),
      signal: abort.signal,
      cache: 'no-store',
    });
    if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
    o.onState?.('live');
    o.onOpen?.(opened);
    opened = true;
    failures = 0;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      for (const msg of parser.feed(value)) {
        lastEventId = msg.lastEventId;
        if (msg.event !== o.event) continue;
        try {
          o.onEvent(JSON.parse(msg.data) as T);
        } catch {
          // a malformed event must not end the stream
        }
      }
    }
  };

  const loop = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      try {
        await once();
      } catch {
        // dropped or refused: retry below
      }
      if (abort.signal.aborted) return;
      o.onState?.('retrying');
      failures++;
      const delay = Math.min(10_000, 500 * 2 ** Math.min(failures, 5));
      await new Promise<void>((r) => {
        const t = setTimeout(r, delay);
        abort.signal.addEventListener('abort', () => {
          clearTimeout(t);
          r();
        });
      });
    }
  };
  void loop();
  return () => abort.abort();
}
