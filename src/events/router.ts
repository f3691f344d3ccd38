import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.js';
import { type FieldError, invalid } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Executor, Store } from '../store/database.js';
import type { NewEvent, StoredEvent } from './catalog.js';
import { contentHash } from './dedup.js';
import type { DeadLetterQueue } from './dlq-service.js';
import { type ExternalEvent, resolveEventType, type ValidEvent, validateExternalEvent } from './external.js';
import type { EventHandler } from './handler.js';
import type { NatsTransport } from './nats-transport.js';
import { outboxRepo } from './outbox-repo.js';
import type { EventRelay, LaneStatus } from './relay.js';
import { type PipelineStage, STAGE_EVENTS, type StageEventPayloads, stageEventType } from './stage-events.js';

export interface PublishResult {
  event_id: string;
  type: string;
  entity_id: string;
  /** True when the event was already published: nothing new was written. */
  duplicate: boolean;
  /** What recognised it: the same id, or the same content within the dedup window. */
  duplicate_of: 'id' | 'content' | null;
}

export interface SubscribeOptions {
  /** Durable subscriber name: its cursor (local) or JetStream consumer (nats), and its dead letters. */
  name: string;
  /** A new subscriber starts at the end of the log unless this is set. */
  fromStart?: boolean;
  /**
   * `local` (default): the outbox relay, in this process, in log order. `nats`: a durable
   * JetStream consumer of the events stream, for subscribers that follow runplane from another
   * process or must share work across replicas.
   */
  transport?: 'local' | 'nats';
}

export interface RouterOptions {
  /** Same content (type, entity, payload) published again within this window is a duplicate; 0 = off. */
  dedupWindowMs: number;
}

/**
 * The event router: one `publish` and one `subscribe` over the three transports the seed's
 * UnifiedEventRouter bridges.
 *
 * - in-process: every event goes through the transactional outbox, and the relay delivers it
 *   in order to local subscribers (durable cursors, at least once, dead-letter queue);
 * - pipeline-stage results: `publishStageResult` turns a stage's outcome into its catalog
 *   event (`pipeline.<stage>.completed|failed`, `model.promoted`), and `onStage` follows them;
 * - NATS JetStream: the relay publishes the outbox into the stream (Nats-Msg-Id = event id),
 *   external producers publish into runplane through the ingest subjects, and `subscribe` with
 *   `transport: 'nats'` reads the stream with a durable consumer.
 *
 * Dedup: an event published with an id that exists is a duplicate (durably, by the unique id);
 * so is the same content within the window (a producer that retries without an id); JetStream
 * drops a re-published id within its duplicate window; NATS consumers drop an event id they
 * handled within their window (a redelivery after a lost ack).
 */
export class EventRouter {
  private lastPrune = 0;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    readonly relay: EventRelay,
    readonly dlq: DeadLetterQueue,
    readonly nats: NatsTransport | null,
    private readonly opts: RouterOptions,
  ) {}

  /** Validates an external event against the catalog and publishes it (422 with field errors if invalid). */
  async publish(input: ExternalEvent): Promise<PublishResult> {
    const v = validateExternalEvent(input);
    if (!v.ok) throw invalid(v.errors, 'event is invalid');
    return this.append(v.event);
  }

  /** The pipeline-stage transport: a stage's result becomes its completion or failure event. */
  async publishStageResult<S extends PipelineStage>(
    stage: S,
    result:
      | { success: true; payload: StageEventPayloads[(typeof STAGE_EVENTS)[S]['completed']] }
      | { success: false; payload: StageEventPayloads[(typeof STAGE_EVENTS)[S]['failed']] },
    id?: string,
  ): Promise<PublishResult> {
    return this.publish({ type: stageEventType(stage, result.success), payload: result.payload, id });
  }

  /** Typed internal events in the caller's transaction, committed with its state change. */
  async publishIn(tx: Executor, events: readonly NewEvent[]): Promise<void> {
    await outboxRepo.append(tx, events, this.clock.now());
  }

  /** Subscribes to events whose type matches `pattern` (see ./subjects.ts), on a transport. */
  async subscribe(
    pattern: string | readonly string[],
    handler: EventHandler,
    opts: SubscribeOptions,
  ): Promise<void> {
    if (opts.transport !== 'nats') {
      await this.relay.subscribe(opts.name, pattern, handler, opts.fromStart ?? false);
      return;
    }
    if (!this.nats) throw new Error('the NATS transport is off: set --nats-url / RUNPLANE_NATS_URL');
    if (typeof pattern !== 'string') throw new Error('a NATS subscriber takes one pattern');
    this.nats.subscribe(opts.name, pattern, handler, opts.fromStart ?? false);
    this.dlq.register(`nats:${opts.name}`, handler);
  }

  /** Follows one pipeline stage's results (completion and failure), in-process. */
  async onStage(stage: PipelineStage, name: string, handler: EventHandler, fromStart = false): Promise<void> {
    const { completed, failed } = STAGE_EVENTS[stage];
    await this.relay.subscribe(name, [completed, failed], handler, fromStart);
  }

  /** What each transport is doing (for health and the API). */
  transports(): {
    local: LaneStatus[];
    nats: ReturnType<NatsTransport['status']> | null;
  } {
    return { local: this.relay.status(), nats: this.nats?.status() ?? null };
  }

  /**
   * The NATS ingest handler: a message on `<prefix>.ingest.<type>` with a JSON body
   * `{type?, entity_id?, payload, id?}` (type defaults to the subject's, id to Nats-Msg-Id) is
   * validated and published like POST /api/v1/events. Invalid ones throw a 422, which the
   * transport dead-letters at once.
   */
  readonly ingest = async (ev: StoredEvent): Promise<void> => {
    const msg = ev.payload as { subject: string; msg_id: string | null; data: string };
    const fail = (field: string, code: string, message: string): never => {
      throw invalid([{ field, code, message }], `invalid message on ${msg.subject}`);
    };
    let body: unknown;
    try {
      body = JSON.parse(msg.data);
    } catch (err) {
      fail('body', 'MALFORMED_JSON', `not valid JSON: ${(err as Error).message}`);
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      fail('body', 'INVALID_TYPE', 'must be a JSON object {type?, entity_id?, payload, id?}');
    const b = body as Record<string, unknown>;
    const base = this.nats ? `${this.nats.ingestBase}.` : '';
    const fromSubject = base && msg.subject.startsWith(base) ? msg.subject.slice(base.length) : '';
    const errors: FieldError[] = [];
    for (const k of Object.keys(b))
      if (!['type', 'entity_id', 'payload', 'id'].includes(k))
        errors.push({ field: k, code: 'UNKNOWN_FIELD', message: 'is not a known field' });
    for (const k of ['type', 'entity_id', 'id'] as const)
      if (b[k] !== undefined && typeof b[k] !== 'string')
        errors.push({ field: k, code: 'INVALID_TYPE', message: 'must be string' });
    if (!('payload' in b)) errors.push({ field: 'payload', code: 'REQUIRED', message: 'is required' });
    const type = typeof b.type === 'string' ? b.type : fromSubject;
    if (
      typeof b.type === 'string' &&
      fromSubject &&
      resolveEventType(b.type) !== resolveEventType(fromSubject)
    )
      errors.push({
        field: 'type',
        code: 'INVALID_VALUE',
        message: `does not match the subject ${msg.subject}`,
      });
    if (errors.length > 0) throw invalid(errors, `invalid message on ${msg.subject}`);
    await this.publish({
      type,
      entity_id: b.entity_id as string | undefined,
      payload: b.payload,
      id: (b.id as string | undefined) ?? msg.msg_id ?? undefined,
    });
  };

  private async append(e: ValidEvent): Promise<PublishResult> {
    const now = this.clock.now();
    const window = this.opts.dedupWindowMs;
    const hash = window > 0 ? contentHash(e.type, e.entity_id, e.payload) : null;
    const result = await this.store.write(async (tx): Promise<PublishResult> => {
      if (e.id) {
        const existing = await outboxRepo.findById(tx, e.id);
        if (existing)
          return {
            event_id: existing.id,
            type: existing.type,
            entity_id: existing.entity_id,
            duplicate: true,
            duplicate_of: 'id',
          };
      }
      if (hash) {
        const prior = await outboxRepo.recentHash(tx, hash, now - window);
        if (prior)
          return {
            event_id: prior,
            type: e.type,
            entity_id: e.entity_id,
            duplicate: true,
            duplicate_of: 'content',
          };
      }
      const id = e.id ?? newId('evt', now);
      await outboxRepo.appendWithIds(
        tx,
        [{ id, type: e.type, entity_id: e.entity_id, payload: e.payload }],
        now,
      );
      if (hash) await outboxRepo.saveHash(tx, hash, id, now);
      return { event_id: id, type: e.type, entity_id: e.entity_id, duplicate: false, duplicate_of: null };
    });
    if (hash && now - this.lastPrune > window) {
      this.lastPrune = now;
      await outboxRepo
        .pruneHashes(this.store.db, now - window)
        .catch((err: unknown) => this.log.warn({ err }, 'pruning event hashes failed'));
    }
    return result;
  }
}
