import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { App } from '../http/app.js';
import type { Clock } from '../shared/clock.js';
import type { Store } from '../store/database.js';
import { DeadLetterQueue } from './dlq-service.js';
import { INGEST_SUBSCRIBER, NatsTransport } from './nats-transport.js';
import { EventRelay } from './relay.js';
import { EventRouter } from './router.js';
import { registerEventRoutes } from './routes.js';

export type EventsConfig = Pick<
  Config,
  | 'natsUrl'
  | 'natsStream'
  | 'natsSubjectPrefix'
  | 'natsRunStatusSubject'
  | 'eventDedupWindowMs'
  | 'relayHandlerRetries'
  | 'dlqMaxRetries'
  | 'dlqBaseDelayMs'
  | 'dlqMaxDelayMs'
  | 'dlqAbandonAfterMs'
  | 'dlqRetryIntervalMs'
>;

/** The events slice as the controller runs it: relay, dead-letter queue, NATS, router. */
export interface EventSystem {
  relay: EventRelay;
  dlq: DeadLetterQueue;
  router: EventRouter;
  nats: NatsTransport | null;
  registerRoutes(app: App): void;
  /** Attaches the NATS publisher and ingest consumer, starts the relay, the DLQ daemon and NATS. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Builds the events slice. Slices subscribe (`relay.subscribe` / `router.subscribe`) between
 * this and `start()`; the relay delivers once started.
 */
export function createEventSystem(
  store: Store,
  clock: Clock,
  log: Logger,
  config: EventsConfig,
): EventSystem {
  const dlq = new DeadLetterQueue(
    store,
    clock,
    log,
    {
      maxRetries: config.dlqMaxRetries,
      baseDelayMs: config.dlqBaseDelayMs,
      maxDelayMs: config.dlqMaxDelayMs,
      abandonAfterMs: config.dlqAbandonAfterMs,
    },
    { retryIntervalMs: config.dlqRetryIntervalMs },
  );
  const relay = new EventRelay(store, clock, log, {
    handlerRetries: config.relayHandlerRetries,
    deadLetters: dlq,
  });
  const nats = config.natsUrl
    ? new NatsTransport(
        {
          url: config.natsUrl,
          stream: config.natsStream,
          subjectPrefix: config.natsSubjectPrefix,
          runStatusSubject: config.natsRunStatusSubject,
          maxDeliveries: config.relayHandlerRetries + 1,
          dedupWindowMs: Math.max(config.eventDedupWindowMs, 120_000),
        },
        clock,
        log,
        (input) => dlq.record(store.db, input),
      )
    : null;
  const router = new EventRouter(store, clock, log, relay, dlq, nats, {
    dedupWindowMs: config.eventDedupWindowMs,
  });
  let started = false;

  return {
    relay,
    dlq,
    router,
    nats,
    registerRoutes(app) {
      registerEventRoutes(app, { router, dlq });
    },
    async start() {
      if (started) return;
      started = true;
      if (nats) {
        const sink = `nats:${config.natsStream}`;
        await relay.attachSink(sink, '*', nats.publish);
        nats.onReady(() => relay.retryNow(sink));
        nats.consumeIngest(router.ingest);
        dlq.register(INGEST_SUBSCRIBER, router.ingest);
        nats.start();
      }
      relay.start();
      dlq.start();
    },
    async stop() {
      await dlq.stop();
      await relay.stop();
      await nats?.stop();
    },
  };
}
