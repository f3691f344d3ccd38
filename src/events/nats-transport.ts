import {
  AckPolicy,
  type ConsumerMessages,
  connect,
  createInbox,
  DeliverPolicy,
  DiscardPolicy,
  Events,
  headers,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
  nanos,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type Subscription,
} from 'nats';
import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.js';
import { AppError } from '../shared/errors.js';
import { normalizeTraceparent, withTraceparent } from '../tracing/context.js';
import type { StoredEvent } from './catalog.js';
import { DedupWindow } from './dedup.js';
import type { DeadLetterInput } from './dlq-service.js';
import type { EventHandler } from './handler.js';
import { natsFilter } from './subjects.js';

/**
 * NATS JetStream transport.
 *
 * Out: the relay hands it the outbox in batches (`publish`, a relay sink with a durable cursor),
 * and it publishes each event on `<prefix>.events.<type>` into the stream (default
 * RUNPLANE_EVENTS) with `Nats-Msg-Id` = event id, so a batch published again after an outage is
 * deduplicated by JetStream. `run.status` events also go on the `run-status` subject as the
 * seed's compact document. While NATS is down the sink fails fast and the relay holds its cursor:
 * an outage only delays. An event written in a trace carries it in the W3C `traceparent`
 * message header.
 *
 * In: durable pull consumers with explicit acks, on the events stream (cross-process
 * subscribers, in order) and on the ingest stream (`<prefix>.ingest.>`, external producers, a
 * work queue). A process that was down resumes where its consumer stopped.
 * A handler that fails is retried in place with backoff, then dead-lettered; a message is acked
 * only when handled or dead-lettered. Handlers run in the trace context of the message's
 * `traceparent` header (an external producer's too), outside any trace without one.
 */
export interface NatsConfig {
  url: string;
  /** Stream of published events; the ingest stream is `<stream>_INGEST`. */
  stream: string;
  /** Subjects: `<prefix>.events.<type>` and `<prefix>.ingest.<type>`. */
  subjectPrefix: string;
  /** Subject of the compact run-status documents. */
  runStatusSubject: string;
  /** Connection name shown by the server. */
  name?: string;
  /** JetStream's Nats-Msg-Id dedup window. */
  duplicateWindowMs?: number;
  /** How long the streams keep messages (0 = for ever). */
  maxAgeMs?: number;
  /** Handler attempts on one message (in place, with backoff) before it is dead-lettered. */
  maxDeliveries?: number;
  /** Window of the consumers' event-id dedup (redeliveries after a lost ack). */
  dedupWindowMs?: number;
  /** How long to wait for a JetStream publish acknowledgement. */
  publishTimeoutMs?: number;
}

/** A consumer's view of one message: the event and what the transport did with it. */
interface ConsumerSpec {
  durable: string;
  stream: string;
  filter: string;
  fromStart: boolean;
  handler: EventHandler;
  decode(m: JsMsg): StoredEvent;
  dedup: DedupWindow;
  messages: ConsumerMessages | null;
  done: Promise<void>;
}

/** The event as it travels on `<prefix>.events.<type>`. */
export interface WireEvent {
  id: string;
  seq: number;
  type: string;
  entity_id: string;
  payload: unknown;
  created_at: string;
}

export function toWire(ev: StoredEvent): WireEvent {
  return {
    id: ev.id,
    seq: ev.seq,
    type: ev.type,
    entity_id: ev.entity_id,
    payload: ev.payload,
    created_at: new Date(ev.created_at).toISOString(),
  };
}

/** The event of a wire document; its trace comes from the message's `traceparent` header. */
export function fromWire(w: WireEvent, traceparent: string | null = null): StoredEvent {
  return { ...w, created_at: Date.parse(w.created_at), traceparent: normalizeTraceparent(traceparent) };
}

/** The W3C trace context header of runplane's messages. */
export const TRACEPARENT_HEADER = 'traceparent';

/** The seed's compact run-status document (run_id, status, step, samples_per_sec, last_error) plus health. */
export function runStatusDocument(ev: StoredEvent): Record<string, unknown> {
  const p = (ev.payload ?? {}) as Record<string, unknown>;
  return {
    run_id: p.run_id ?? ev.entity_id,
    status: p.status ?? null,
    health: p.health ?? null,
    step: p.step ?? null,
    samples_per_sec: p.samples_per_sec ?? null,
    last_error: p.last_error ?? null,
    event_id: ev.id,
    updated_at: new Date(ev.created_at).toISOString(),
  };
}

const INGEST_DURABLE = 'runplane-ingest';
/** The dead-letter subscriber name of the ingest consumer. */
export const INGEST_SUBSCRIBER = `nats:${INGEST_DURABLE}`;
const text = new TextDecoder();

export class NatsTransport {
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private ready = false;
  private stopped = false;
  private readonly consumers: ConsumerSpec[] = [];
  private readyWaiters: Array<() => void> = [];
  private connecting: Promise<void> | null = null;
  private readonly listeners: Array<() => void> = [];
  private published = 0;
  private readonly wakers = new Set<() => void>();
  private acks: { prefix: string; sub: Subscription } | null = null;
  private readonly pendingAcks = new Map<string, { resolve: () => void; reject: (err: Error) => void }>();
  private ackSeq = 0;

  constructor(
    readonly cfg: NatsConfig,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** Where consumers put messages they give up on (the dead-letter queue). */
    private readonly deadLetter: ((input: DeadLetterInput) => Promise<void>) | null,
  ) {}

  get eventsStream(): string {
    return this.cfg.stream;
  }
  get ingestStream(): string {
    return `${this.cfg.stream}_INGEST`;
  }
  /** `<prefix>.events`: every event's subject starts with it. */
  get eventsBase(): string {
    return `${this.cfg.subjectPrefix}.events`;
  }
  get ingestBase(): string {
    return `${this.cfg.subjectPrefix}.ingest`;
  }
  subjectFor(type: string): string {
    return `${this.eventsBase}.${type}`;
  }

  /** True while connected with the streams in place. */
  isReady(): boolean {
    return this.ready;
  }

  status(): { url: string; connected: boolean; stream: string; published: number; consumers: string[] } {
    return {
      url: this.cfg.url,
      connected: this.ready,
      stream: this.cfg.stream,
      published: this.published,
      consumers: this.consumers.map((c) => c.durable),
    };
  }

  /** Called each time the transport becomes ready (first connect and every reconnect). */
  onReady(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Connects in the background (retrying for ever); the controller does not wait for NATS. */
  start(): void {
    this.stopped = false;
    this.connecting ??= this.connectLoop().finally(() => {
      this.connecting = null;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ready = false;
    for (const w of this.readyWaiters.splice(0)) w();
    for (const w of [...this.wakers]) w();
    for (const c of this.consumers) await c.messages?.close().catch(() => undefined);
    await Promise.all(this.consumers.map((c) => c.done));
    await this.connecting;
    const nc = this.nc;
    this.nc = null;
    this.js = null;
    this.acks = null;
    this.failAcks(null, new Error('NATS transport stopped'));
    if (nc && !nc.isClosed()) await nc.close().catch(() => undefined);
  }

  /**
   * The relay sink: publishes a batch into the stream, all at once, and waits for every
   * JetStream acknowledgement. Throws when NATS is not reachable or a publish is refused or not
   * acknowledged in time, so the relay keeps its cursor and tries again (JetStream drops the ids
   * it already has).
   *
   * This is the JetStream publish protocol (a message with Nats-Msg-Id and
   * Nats-Expected-Stream headers and a reply subject; the stream answers with a PubAck) on one
   * reply subscription and one timer per batch. nats.js's `js.publish` costs a request object,
   * a timer and a captured stack per message, which made it the relay's bottleneck.
   */
  readonly publish = async (events: StoredEvent[]): Promise<void> => {
    const nc = this.nc;
    if (!nc || !this.ready || !this.acks) throw new Error(`NATS at ${this.cfg.url} is not connected`);
    const waits: Promise<void>[] = [];
    const tokens: string[] = [];
    const send = (subject: string, body: string, msgId: string, traceparent: string | null) => {
      const token = String(++this.ackSeq);
      const h = headers();
      h.set('Nats-Msg-Id', msgId);
      h.set('Nats-Expected-Stream', this.cfg.stream);
      if (traceparent) h.set(TRACEPARENT_HEADER, traceparent);
      tokens.push(token);
      waits.push(new Promise((resolve, reject) => this.pendingAcks.set(token, { resolve, reject })));
      nc.publish(subject, body, { headers: h, reply: `${this.acks?.prefix}.${token}` });
    };
    for (const ev of events) {
      send(this.subjectFor(ev.type), JSON.stringify(toWire(ev)), ev.id, ev.traceparent);
      if (ev.type === 'run.status')
        send(
          this.cfg.runStatusSubject,
          JSON.stringify(runStatusDocument(ev)),
          `${ev.id}.run-status`,
          ev.traceparent,
        );
    }
    const timeoutMs = this.cfg.publishTimeoutMs ?? 5000;
    const timer = setTimeout(
      () => this.failAcks(tokens, new Error(`no JetStream acknowledgement within ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      await Promise.all(waits);
    } finally {
      clearTimeout(timer);
      this.failAcks(tokens, new Error('publish batch abandoned'));
    }
    this.published += events.length;
  };

  /** Rejects the acknowledgements still awaited among `tokens` (all of them without tokens). */
  private failAcks(tokens: readonly string[] | null, err: Error): void {
    for (const token of tokens ?? [...this.pendingAcks.keys()]) {
      const p = this.pendingAcks.get(token);
      if (!p) continue;
      this.pendingAcks.delete(token);
      p.reject(err);
    }
  }

  /** One reply subscription per connection for the PubAcks of the relay's publishes. */
  private subscribeAcks(nc: NatsConnection): void {
    const prefix = createInbox();
    const sub = nc.subscribe(`${prefix}.*`, {
      callback: (err, msg) => {
        if (err) return;
        const token = msg.subject.slice(prefix.length + 1);
        const p = this.pendingAcks.get(token);
        if (!p) return;
        this.pendingAcks.delete(token);
        // No stream listens on the subject: the server answers with a 503 status and no body.
        if (msg.headers?.code === 503) return p.reject(new Error('no JetStream stream for this subject'));
        try {
          const ack = JSON.parse(text.decode(msg.data)) as {
            error?: { description?: string; err_code?: number };
          };
          if (ack.error)
            p.reject(
              new Error(`JetStream refused the message: ${ack.error.description} (${ack.error.err_code})`),
            );
          else p.resolve();
        } catch (e) {
          p.reject(e instanceof Error ? e : new Error(String(e)));
        }
      },
    });
    this.acks = { prefix, sub };
  }

  /**
   * A durable consumer of the events stream (a cross-process subscriber): every event whose type
   * matches `pattern`, acked after `handler` returns. A new durable starts with new events unless
   * fromStart.
   */
  subscribe(durable: string, pattern: string, handler: EventHandler, fromStart = false): void {
    this.addConsumer({
      durable,
      stream: this.eventsStream,
      filter: natsFilter(this.eventsBase, pattern),
      fromStart,
      handler,
      decode: (m) => fromWire(JSON.parse(text.decode(m.data)) as WireEvent, traceparentOf(m)),
    });
  }

  /**
   * The ingest consumer: each message on `<prefix>.ingest.>` becomes an `nats.ingest` event
   * (subject, message id, raw data) for `handler`, which validates and publishes it. Messages
   * are taken from the start: nothing an external producer sent is skipped.
   */
  consumeIngest(handler: EventHandler): void {
    this.addConsumer({
      durable: INGEST_DURABLE,
      stream: this.ingestStream,
      filter: `${this.ingestBase}.>`,
      fromStart: true,
      handler,
      decode: (m) => ({
        seq: m.seq,
        id: m.headers?.get('Nats-Msg-Id') || `nats-ingest-${m.seq}`,
        type: 'nats.ingest',
        entity_id: m.subject,
        payload: {
          subject: m.subject,
          msg_id: m.headers?.get('Nats-Msg-Id') || null,
          data: text.decode(m.data),
        },
        created_at: Math.floor(m.info.timestampNanos / 1e6),
        traceparent: traceparentOf(m),
      }),
    });
  }

  private addConsumer(spec: Omit<ConsumerSpec, 'dedup' | 'messages' | 'done'>): void {
    if (this.consumers.some((c) => c.durable === spec.durable && c.stream === spec.stream))
      throw new Error(`NATS consumer ${spec.durable} is already registered`);
    const c: ConsumerSpec = {
      ...spec,
      dedup: new DedupWindow(this.cfg.dedupWindowMs ?? 120_000, this.clock),
      messages: null,
      done: Promise.resolve(),
    };
    this.consumers.push(c);
    c.done = this.consumeLoop(c);
  }

  // ----- connection -----

  private async connectLoop(): Promise<void> {
    for (let failures = 0; !this.stopped; failures++) {
      try {
        const nc = await connect({
          servers: this.cfg.url,
          name: this.cfg.name ?? 'runplane',
          maxReconnectAttempts: -1,
          reconnectTimeWait: 500,
          pingInterval: 10_000,
          timeout: 5000,
        });
        if (this.stopped) {
          await nc.close();
          return;
        }
        this.nc = nc;
        this.js = nc.jetstream();
        this.subscribeAcks(nc);
        void this.watch(nc);
        this.log.info({ url: this.cfg.url, stream: this.cfg.stream }, 'connected to NATS');
        await this.becomeReady(nc);
        return;
      } catch (err) {
        if (failures === 0 || (failures & (failures - 1)) === 0)
          this.log.warn(
            { err, url: this.cfg.url, failures: failures + 1 },
            'cannot connect to NATS; retrying',
          );
        await this.pause(Math.min(5000, 250 * 2 ** Math.min(failures, 5)));
      }
    }
  }

  /** Follows the connection: not ready while disconnected, streams checked again on reconnect. */
  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect) {
        this.ready = false;
        // Their acknowledgements will not come: let the relay try again from its cursor.
        this.failAcks(null, new Error('NATS disconnected'));
        if (!this.stopped) this.log.warn({ url: this.cfg.url }, 'NATS disconnected');
      } else if (s.type === Events.Reconnect) {
        this.log.info({ url: this.cfg.url }, 'NATS reconnected');
        void this.becomeReady(nc);
      }
    }
    // The status iterator ends when the connection closes for good: connect again.
    if (!this.stopped && this.nc === nc) {
      this.ready = false;
      this.nc = null;
      this.js = null;
      this.acks = null;
      this.failAcks(null, new Error('NATS connection closed'));
      this.start();
    }
  }

  private async becomeReady(nc: NatsConnection): Promise<void> {
    for (let failures = 0; !this.stopped && !nc.isClosed(); failures++) {
      try {
        await this.ensureStreams(await nc.jetstreamManager({ timeout: 5000 }));
        this.ready = true;
        for (const w of this.readyWaiters.splice(0)) w();
        for (const l of this.listeners) l();
        return;
      } catch (err) {
        this.log.warn({ err, url: this.cfg.url }, 'JetStream not available yet; retrying');
        await this.pause(Math.min(5000, 250 * 2 ** Math.min(failures, 5)));
      }
    }
  }

  private async ensureStreams(jsm: JetStreamManager): Promise<void> {
    const common: Partial<StreamConfig> = {
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(this.cfg.duplicateWindowMs ?? 120_000),
      max_age: nanos(this.cfg.maxAgeMs ?? 0),
    };
    await ensureStream(jsm, {
      ...common,
      name: this.eventsStream,
      subjects: [`${this.eventsBase}.>`, this.cfg.runStatusSubject],
      retention: RetentionPolicy.Limits,
    });
    await ensureStream(jsm, {
      ...common,
      name: this.ingestStream,
      subjects: [`${this.ingestBase}.>`],
      retention: RetentionPolicy.Workqueue,
    });
  }

  /** Waits `ms`, or less when the transport stops. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  private whenReady(): Promise<JetStreamClient | null> {
    if (this.stopped) return Promise.resolve(null);
    if (this.ready && this.js) return Promise.resolve(this.js);
    return new Promise((resolve) => {
      this.readyWaiters.push(() => resolve(this.stopped ? null : this.js));
    });
  }

  // ----- consumers -----

  private async consumeLoop(c: ConsumerSpec): Promise<void> {
    for (let failures = 0; !this.stopped; ) {
      try {
        const js = await this.whenReady();
        if (!js || !this.nc) return;
        await this.ensureConsumer(await this.nc.jetstreamManager(), c);
        const consumer = await js.consumers.get(c.stream, c.durable);
        const messages = await consumer.consume({ max_messages: 1000 });
        c.messages = messages;
        failures = 0;
        for await (const m of messages) await this.handle(c, m);
      } catch (err) {
        if (this.stopped) return;
        failures += 1;
        this.log.warn({ err, consumer: c.durable }, 'NATS consumer interrupted; resuming');
        await this.pause(Math.min(5000, 250 * 2 ** Math.min(failures, 5)));
      } finally {
        c.messages = null;
      }
    }
  }

  private async ensureConsumer(jsm: JetStreamManager, c: ConsumerSpec): Promise<void> {
    try {
      const info = await jsm.consumers.info(c.stream, c.durable);
      if (info.config.filter_subject !== c.filter)
        await jsm.consumers.update(c.stream, c.durable, { filter_subject: c.filter });
    } catch (err) {
      if (!notFound(err)) throw err;
      await jsm.consumers.add(c.stream, {
        durable_name: c.durable,
        // Explicit, not AckAll: after a reconnect, messages the server delivered but this client
        // never received come again later; an AckAll of a newer message would ack them unseen.
        ack_policy: AckPolicy.Explicit,
        deliver_policy: c.fromStart ? DeliverPolicy.All : DeliverPolicy.New,
        filter_subject: c.filter,
        ack_wait: nanos(30_000),
        max_ack_pending: 20_000,
      });
    }
  }

  /**
   * Handles one message. Messages are handled in order: a failing handler is retried in place
   * (with backoff) before its message is dead-lettered, so later events do not overtake it. A
   * message is acked only once it was handled or dead-lettered.
   */
  private async handle(c: ConsumerSpec, m: JsMsg): Promise<void> {
    let ev: StoredEvent | null = null;
    try {
      ev = c.decode(m);
    } catch (err) {
      // Not an event at all: nothing will ever make it one.
      const raw: StoredEvent = {
        seq: m.seq,
        id: `nats-${c.stream}-${m.seq}`,
        type: 'nats.undecodable',
        entity_id: m.subject,
        payload: { subject: m.subject, data: text.decode(m.data) },
        created_at: this.clock.now(),
        traceparent: traceparentOf(m),
      };
      if (!(await this.giveUp(c, m, raw, err, 1, false))) return;
    }
    if (ev && !c.dedup.has(ev.id)) {
      const maxAttempts = this.cfg.maxDeliveries ?? 4;
      for (let attempt = 1; ; attempt++) {
        try {
          const e = ev;
          await withTraceparent(e.traceparent, () => c.handler(e));
          c.dedup.add(ev.id);
          break;
        } catch (err) {
          const permanent = err instanceof AppError && err.status < 500;
          if (permanent || attempt >= maxAttempts) {
            if (!(await this.giveUp(c, m, ev, err, attempt, !permanent))) return;
            break;
          }
          this.log.warn({ err, consumer: c.durable, event: ev.id, attempt }, 'NATS consumer handler failed');
          m.working();
          await this.pause(Math.min(10_000, 250 * 2 ** (attempt - 1)));
          // Stopped meanwhile: leave it unacked, it is delivered again next time.
          if (this.stopped) return;
          m.working();
        }
      }
    }
    m.ack();
  }

  /**
   * Dead-letters a message; if the dead-letter queue cannot take it yet, tries again (in order:
   * the message is not passed by later ones). False when stopped first.
   */
  private async giveUp(
    c: ConsumerSpec,
    m: JsMsg,
    ev: StoredEvent,
    err: unknown,
    attempts: number,
    retryable: boolean,
  ): Promise<boolean> {
    if (!this.deadLetter) {
      this.log.error(
        { err, consumer: c.durable, event: ev.id },
        'NATS message dropped: no dead-letter queue',
      );
      return true;
    }
    for (let failures = 0; !this.stopped; failures++) {
      try {
        await this.deadLetter({
          subscriber: `nats:${c.durable}`,
          event: ev,
          error: err,
          attempts,
          retryable,
        });
        return true;
      } catch (dlqErr) {
        this.log.error(
          { err: dlqErr, consumer: c.durable },
          'cannot dead-letter a NATS message yet; retrying',
        );
        m.working();
        await this.pause(Math.min(10_000, 500 * 2 ** Math.min(failures, 5)));
      }
    }
    return false;
  }
}

/** A message's trace context (its valid `traceparent` header), or null. */
function traceparentOf(m: JsMsg): string | null {
  return normalizeTraceparent(m.headers?.get(TRACEPARENT_HEADER));
}

function notFound(err: unknown): boolean {
  const e = err as { code?: string; api_error?: { code?: number }; message?: string };
  return e?.api_error?.code === 404 || e?.code === '404' || /not found/i.test(e?.message ?? '');
}

/** Creates the stream, or brings an existing one's subjects up to date. */
async function ensureStream(
  jsm: JetStreamManager,
  cfg: Partial<StreamConfig> & { name: string },
): Promise<void> {
  try {
    const info = await jsm.streams.info(cfg.name);
    const want = [...(cfg.subjects ?? [])].sort().join(',');
    if ([...(info.config.subjects ?? [])].sort().join(',') !== want)
      await jsm.streams.update(cfg.name, { ...info.config, subjects: cfg.subjects ?? [] });
  } catch (err) {
    if (!notFound(err)) throw err;
    await jsm.streams.add(cfg);
  }
}
