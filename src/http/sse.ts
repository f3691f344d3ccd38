import type { FastifyReply, FastifyRequest } from 'fastify';
import type { StoredEvent } from '../events/catalog.js';

/** What a server-sent-events endpoint needs from a live event source. */
export interface EventSource {
  /** Events after `seq`, oldest first. */
  after(seq: number, limit?: number): Promise<StoredEvent[]>;
  /** The newest sequence number the source has seen. */
  readonly head: number;
  /** Brings `head` up to the newest committed event (a stream that starts at the present). */
  catchUp?(): Promise<void>;
  /** Called whenever new events may be available; returns an unsubscribe function. */
  subscribe(listener: () => void): () => void;
}

export interface SseOptions {
  /** The SSE `event:` name. */
  name: string;
  /** The `data:` of an event, or null to skip it (e.g. filtered out). */
  format(ev: StoredEvent): unknown | null;
  /** Keep-alive comment interval, so proxies do not close an idle stream. */
  keepAliveMs?: number;
}

/**
 * Serves a stream of events as server-sent events. Each event's id is its outbox sequence
 * number, so a client that reconnects with `Last-Event-ID` (header, or `last_event_id` in
 * the query for clients that cannot set headers) resumes exactly after the last one it saw;
 * without it the stream starts at the present. Consumers are level-triggered: on reconnect
 * they reconcile from the REST API.
 */
export async function serveEvents(
  source: EventSource,
  req: FastifyRequest,
  reply: FastifyReply,
  o: SseOptions,
): Promise<void> {
  const header = req.headers['last-event-id'];
  const fromQuery = (req.query as { last_event_id?: string } | undefined)?.last_event_id;
  const resume = Number(Array.isArray(header) ? header[0] : (header ?? fromQuery));
  const resumes = Number.isFinite(resume) && resume >= 0;
  // A client that goes away while the source catches up is not served (its 'close' has passed).
  let gone = false;
  const onGone = () => {
    gone = true;
  };
  reply.raw.once('close', onGone);
  if (!resumes) await source.catchUp?.();
  reply.raw.off('close', onGone);
  let cursor = resumes ? resume : source.head;

  reply.hijack();
  const res = reply.raw;
  if (gone || res.socket === null || res.socket.destroyed) {
    res.destroy();
    return;
  }
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write('retry: 2000\n\n');

  let closed = false;
  let pumping = false;
  let again = false;
  const pump = async (): Promise<void> => {
    if (pumping) {
      again = true;
      return;
    }
    pumping = true;
    try {
      do {
        again = false;
        for (;;) {
          const batch = await source.after(cursor, 500);
          if (closed || batch.length === 0) break;
          let chunk = '';
          for (const ev of batch) {
            cursor = ev.seq;
            const data = o.format(ev);
            if (data !== null) chunk += `id: ${ev.seq}\nevent: ${o.name}\ndata: ${JSON.stringify(data)}\n\n`;
          }
          if (chunk) res.write(chunk);
          if (batch.length < 500) break;
        }
      } while (again && !closed);
    } catch (err) {
      req.log.warn({ err }, 'event stream read failed');
      close();
    } finally {
      pumping = false;
    }
  };
  const unsubscribe = source.subscribe(() => void pump());
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), o.keepAliveMs ?? 15_000);
  const close = () => {
    if (closed) return;
    closed = true;
    unsubscribe();
    clearInterval(keepAlive);
    res.end();
  };
  req.raw.once('close', close);
  res.once('close', close);
  void pump();
}
