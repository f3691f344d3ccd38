/**
 * `npm run bench -- events`: the event router's two delivery paths, beside the raw nats.js
 * publish rate to the same NATS server in the same run.
 *
 * - outbox → in-process subscriber: events written to the outbox (transactions of --batch
 *   events), delivered by the relay to a local subscriber;
 * - outbox → JetStream → consumer: the same, published by the relay's NATS sink into the stream
 *   (Nats-Msg-Id = event id) and read back by a durable JetStream consumer (NatsTransport);
 * - anchor: nats.js `js.publish` with msgID, 500 in flight, into a stream on the same server
 *   (what the relay's sink does, without the database), and core `nc.publish` for context;
 * - restart: events produced at a steady rate while the NATS server is stopped and started
 *   again; every one must reach the JetStream consumer (lost = 0).
 *
 * Each path reports events/s (first write to last delivery of a burst of --events) and the
 * end-to-end latency (write call → handler) p50/p99, in the burst and at a paced rate.
 */
import { connect, nanos, RetentionPolicy, StorageType } from 'nats';
import pino from 'pino';
import { loadConfig } from '../src/config.js';
import { event, type StoredEvent } from '../src/events/catalog.js';
import { outboxRepo } from '../src/events/outbox-repo.js';
import { createEventSystem, type EventSystem } from '../src/events/system.js';
import { systemClock } from '../src/shared/clock.js';
import type { Store } from '../src/store/database.js';
import { type Dialect, freshDb, percentile, pgReachable } from './lib/bench-db.js';
import { natsServerBinary, PrivateNatsServer } from './lib/nats-server.js';
import { parseFlags, UsageError } from './lib/options.js';
import { type Cell, formatMarkdown, printTable } from './lib/table.js';
import { fmtPercent, fmtRate, machineLine, nowMs, sleep } from './lib/timing.js';

export const usage = `npm run bench -- events [options]
  --events N        events in each burst (default 20000)
  --batch B         events per outbox transaction in the burst (default 100)
  --paced M         events of the paced latency run, one per transaction (default 1000)
  --paced-rate R    events/s of the paced run (default 200)
  --restart-events K events produced across the NATS restart (default 3000)
  --raw N           messages of the raw nats.js anchors (default: --events)
  --dialect D       sqlite | postgres | both (default sqlite)
  --nats-url URL    use this server instead of a private one (no restart check then)
  --markdown        also print the result table as markdown`;

interface Options {
  events: number;
  batch: number;
  paced: number;
  pacedRate: number;
  restartEvents: number;
  raw: number;
  dialects: Dialect[];
  natsUrl: string | null;
  markdown: boolean;
}

function parseOptions(argv: string[]): Options {
  const f = parseFlags(argv, {
    events: 'string',
    batch: 'string',
    paced: 'string',
    'paced-rate': 'string',
    'restart-events': 'string',
    raw: 'string',
    dialect: 'string',
    'nats-url': 'string',
    markdown: 'boolean',
  });
  const events = f.int('events', 20_000);
  return {
    events,
    batch: f.int('batch', 100),
    paced: f.int('paced', 1000, 0),
    pacedRate: f.int('paced-rate', 200),
    restartEvents: f.int('restart-events', 3000, 0),
    raw: f.int('raw', events),
    dialects: f.dialects('dialect', 'sqlite'),
    natsUrl: f.str('nats-url') ?? null,
    markdown: f.bool('markdown'),
  };
}

const log = pino({ level: process.env.RUNPLANE_BENCH_LOG ?? 'silent' });

// ---------------------------------------------------------------------------------------------
// The runplane side

/** Receipt times of events by index (from the payload), with duplicates counted. */
class Receiver {
  readonly at: Float64Array;
  received = 0;
  duplicates = 0;
  private waiter: { n: number; resolve: () => void } | null = null;
  constructor(size: number) {
    this.at = new Float64Array(size).fill(Number.NaN);
  }
  readonly handle = (e: StoredEvent): void => {
    const i = (e.payload as { games_generated: number }).games_generated;
    if (!Number.isNaN(this.at[i] ?? Number.NaN)) {
      this.duplicates += 1;
      return;
    }
    this.at[i] = nowMs();
    this.received += 1;
    if (this.waiter && this.received >= this.waiter.n) this.waiter.resolve();
  };
  /** Resolves when `n` distinct events have arrived; rejects after `timeoutMs` without progress. */
  async until(n: number, timeoutMs = 60_000): Promise<void> {
    let last = -1;
    const done = new Promise<void>((resolve) => {
      this.waiter = { n, resolve };
      if (this.received >= n) resolve();
    });
    for (;;) {
      const stalled = sleep(timeoutMs).then(() => 'stalled' as const);
      if ((await Promise.race([done.then(() => 'done' as const), stalled])) === 'done') return;
      if (this.received === last) throw new Error(`stalled at ${this.received}/${n} events`);
      last = this.received;
    }
  }
}

interface System {
  store: Store;
  events: EventSystem;
  cleanup(): Promise<void>;
}

let natsCounter = 0;

async function openSystem(dialect: Dialect, natsUrl: string | null): Promise<System> {
  const db = freshDb(dialect);
  const store = await db.open();
  await store.migrate();
  const tag = `bench${process.pid}x${natsCounter++}`;
  const config = loadConfig(
    {
      dataDir: db.dir,
      ...(natsUrl
        ? {
            natsUrl,
            natsStream: tag.toUpperCase(),
            natsSubjectPrefix: `${tag}.runplane`,
            natsRunStatusSubject: `${tag}.run-status`,
          }
        : {}),
      eventDedupWindowMs: '0s',
    },
    {},
  );
  const events = createEventSystem(store, systemClock, log, config);
  return {
    store,
    events,
    async cleanup() {
      await events.stop();
      if (natsUrl) {
        const nc = await connect({ servers: natsUrl });
        const jsm = await nc.jetstreamManager();
        for (const s of [config.natsStream, `${config.natsStream}_INGEST`])
          await jsm.streams.delete(s).catch(() => false);
        await nc.close();
      }
      await store.close();
      await db.cleanup();
    },
  };
}

/** Writes events [from, from + n) in transactions of `batch`, recording each one's write time. */
async function produce(
  store: Store,
  from: number,
  n: number,
  batch: number,
  sent: Float64Array,
): Promise<void> {
  for (let i = from; i < from + n; i += batch) {
    const m = Math.min(batch, from + n - i);
    const t = nowMs();
    for (let k = 0; k < m; k++) sent[i + k] = t;
    await store.write((tx) =>
      outboxRepo.append(
        tx,
        Array.from({ length: m }, (_, k) =>
          event('pipeline.selfplay.completed', 'bench', { config_key: 'bench', games_generated: i + k }),
        ),
        Date.now(),
      ),
    );
  }
}

/** One event per transaction at `rate`/s (on an absolute schedule, so a slow write is caught up). */
async function producePaced(
  store: Store,
  from: number,
  n: number,
  rate: number,
  sent: Float64Array,
  onEach?: (i: number) => Promise<void>,
): Promise<void> {
  const t0 = nowMs();
  for (let k = 0; k < n; k++) {
    const due = t0 + (k * 1000) / rate;
    const wait = due - nowMs();
    if (wait > 0) await sleep(wait);
    await onEach?.(k);
    await produce(store, from + k, 1, 1, sent);
  }
}

interface PathResult {
  rate: number;
  p50: number;
  p99: number;
  pacedP50: number;
  pacedP99: number;
  duplicates: number;
  /** CPU ms per 1000 events in the burst: this process, and the NATS server (NaN when not known). */
  nodeCpu: number;
  serverCpu: number;
}

/** CPU used so far: this process (ms) and the private NATS server (ms, NaN when not ours). */
let serverCpuSeconds: () => number = () => Number.NaN;
function cpuNow(): { node: number; server: number } {
  const u = process.cpuUsage();
  return { node: (u.user + u.system) / 1000, server: serverCpuSeconds() * 1000 };
}

function latencies(sent: Float64Array, got: Float64Array, from: number, n: number): number[] {
  const out: number[] = [];
  for (let i = from; i < from + n; i++) out.push((got[i] ?? Number.NaN) - (sent[i] ?? Number.NaN));
  return out.sort((a, b) => a - b);
}

async function measurePath(o: Options, sys: System, rx: Receiver): Promise<PathResult> {
  const total = o.events + o.paced;
  const sent = new Float64Array(total);
  const warm = Math.min(1000, o.events);
  // Warm-up: a few batches through the whole path (JIT, connections, consumer).
  await produce(sys.store, 0, warm, o.batch, sent);
  await rx.until(warm);
  const t0 = nowMs();
  const c0 = cpuNow();
  await produce(sys.store, warm, o.events - warm, o.batch, sent);
  await rx.until(o.events);
  const c1 = cpuNow();
  let end = 0;
  for (let i = warm; i < o.events; i++) end = Math.max(end, rx.at[i] ?? 0);
  const burst = latencies(sent, rx.at, warm, o.events - warm);
  await producePaced(sys.store, o.events, o.paced, o.pacedRate, sent);
  await rx.until(total);
  const paced = latencies(sent, rx.at, o.events, o.paced);
  return {
    rate: ((o.events - warm) * 1000) / (end - t0),
    p50: percentile(burst, 0.5),
    p99: percentile(burst, 0.99),
    pacedP50: percentile(paced, 0.5),
    pacedP99: percentile(paced, 0.99),
    duplicates: rx.duplicates,
    nodeCpu: ((c1.node - c0.node) * 1000) / (o.events - warm),
    serverCpu: ((c1.server - c0.server) * 1000) / (o.events - warm),
  };
}

async function inProcess(o: Options, dialect: Dialect): Promise<PathResult> {
  const sys = await openSystem(dialect, null);
  try {
    const rx = new Receiver(o.events + o.paced);
    await sys.events.router.subscribe('pipeline.>', rx.handle, { name: 'bench-local' });
    await sys.events.start();
    return await measurePath(o, sys, rx);
  } finally {
    await sys.cleanup();
  }
}

async function viaJetStream(o: Options, dialect: Dialect, natsUrl: string): Promise<PathResult> {
  const sys = await openSystem(dialect, natsUrl);
  try {
    const rx = new Receiver(o.events + o.paced);
    await sys.events.router.subscribe('pipeline.>', rx.handle, {
      name: 'bench-consumer',
      transport: 'nats',
      fromStart: true,
    });
    await sys.events.start();
    for (let i = 0; i < 300 && !sys.events.nats?.isReady(); i++) await sleep(50);
    return await measurePath(o, sys, rx);
  } finally {
    await sys.cleanup();
  }
}

interface RestartResult {
  produced: number;
  received: number;
  lost: number;
  duplicates: number;
  downMs: number;
}

/** Events at a steady rate while the server stops (at 1/3) and starts again (at 2/3). */
async function acrossRestart(
  o: Options,
  dialect: Dialect,
  server: PrivateNatsServer,
): Promise<RestartResult> {
  const sys = await openSystem(dialect, server.url);
  try {
    const n = o.restartEvents;
    const rx = new Receiver(n);
    await sys.events.router.subscribe('pipeline.>', rx.handle, {
      name: 'bench-restart',
      transport: 'nats',
      fromStart: true,
    });
    await sys.events.start();
    for (let i = 0; i < 300 && !sys.events.nats?.isReady(); i++) await sleep(50);
    const sent = new Float64Array(n);
    let downAt = 0;
    let downMs = 0;
    // Ten events per transaction, 2000 events/s: the restart falls in the middle of the stream.
    const batches = Math.ceil(n / 10);
    const t0 = nowMs();
    for (let b = 0; b < batches; b++) {
      const due = t0 + b * 5;
      const wait = due - nowMs();
      if (wait > 0) await sleep(wait);
      if (b === Math.floor(batches / 3)) {
        downAt = nowMs();
        await server.stop();
      }
      if (b === Math.floor((2 * batches) / 3)) {
        await server.start();
        downMs = nowMs() - downAt;
      }
      await produce(sys.store, b * 10, Math.min(10, n - b * 10), 10, sent);
    }
    await rx.until(n, 60_000).catch(() => undefined);
    return { produced: n, received: rx.received, lost: n - rx.received, duplicates: rx.duplicates, downMs };
  } finally {
    await server.start().catch(() => undefined);
    await sys.cleanup();
  }
}

// ---------------------------------------------------------------------------------------------
// The anchors: nats.js straight to the same server

interface RawResult {
  jetstream: number;
  core: number;
  /** CPU ms per 1000 js.publish messages: this process, the NATS server. */
  nodeCpu: number;
  serverCpu: number;
}

async function rawPublish(url: string, n: number): Promise<RawResult> {
  const nc = await connect({ servers: url });
  const stream = `BENCH_RAW_${process.pid}`;
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({
      name: stream,
      subjects: [`bench${process.pid}.raw.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      duplicate_window: nanos(120_000),
    });
    const js = nc.jetstream();
    // A message the size of one the relay publishes.
    const body = JSON.stringify({
      id: 'evt_01jx0000000000000000000000',
      seq: 123456,
      type: 'pipeline.selfplay.completed',
      entity_id: 'bench',
      payload: { config_key: 'bench', games_generated: 123456 },
      created_at: new Date().toISOString(),
    });
    const subject = `bench${process.pid}.raw.pipeline.selfplay.completed`;
    const window = 500;
    const publishAll = async (from: number, count: number) => {
      for (let i = from; i < from + count; i += window) {
        const acks: Promise<unknown>[] = [];
        for (let k = i; k < Math.min(from + count, i + window); k++)
          acks.push(js.publish(subject, body, { msgID: `raw-${k}` }));
        await Promise.all(acks);
      }
    };
    await publishAll(0, Math.min(1000, n));
    const t0 = nowMs();
    const c0 = cpuNow();
    await publishAll(1_000_000, n);
    const jetstream = (n * 1000) / (nowMs() - t0);
    const c1 = cpuNow();

    const k0 = nowMs();
    for (let i = 0; i < n; i++) nc.publish(`bench${process.pid}.core.x`, body);
    await nc.flush();
    const core = (n * 1000) / (nowMs() - k0);
    await jsm.streams.delete(stream);
    return {
      jetstream,
      core,
      nodeCpu: ((c1.node - c0.node) * 1000) / n,
      serverCpu: ((c1.server - c0.server) * 1000) / n,
    };
  } finally {
    await nc.close();
  }
}

// ---------------------------------------------------------------------------------------------

const fmtMs = (ms: number): string =>
  Number.isFinite(ms) ? `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms` : 'n/a';

export async function runEvents(argv: string[]): Promise<void> {
  const o = parseOptions(argv);
  if (o.batch > o.events) throw new UsageError('--batch must not exceed --events');
  console.log(machineLine());
  let server: PrivateNatsServer | null = null;
  let natsUrl = o.natsUrl;
  if (!natsUrl) {
    const bin = natsServerBinary();
    if (!bin) throw new Error('no nats-server binary (set NATS_SERVER_BIN, or pass --nats-url)');
    const s = await PrivateNatsServer.create(bin);
    server = s;
    await s.start();
    natsUrl = s.url;
    serverCpuSeconds = () => s.cpuSeconds();
  }
  const dialects: Dialect[] = [];
  for (const d of o.dialects) {
    if (d === 'postgres') {
      const why = await pgReachable();
      if (why) {
        console.log(`postgres: skipped (${why})`);
        continue;
      }
    }
    dialects.push(d);
  }
  console.log(
    `nats: ${server ? `private nats-server on ${natsUrl} (JetStream, file storage)` : natsUrl}; ` +
      `burst ${o.events} events in transactions of ${o.batch}; paced ${o.paced} at ${o.pacedRate}/s\n`,
  );
  try {
    // The anchor runs before and after each JetStream path and the best rate counts: other load
    // on the machine can only lower it, so the ratios err on the low side.
    const raws = [await rawPublish(natsUrl, o.raw)];
    const paths: Array<{ label: string; dialect: Dialect; r: PathResult; target: boolean }> = [];
    const restarts: Array<[Dialect, RestartResult]> = [];
    for (const d of dialects) {
      paths.push({
        label: 'outbox → in-process subscriber',
        dialect: d,
        r: await inProcess(o, d),
        target: false,
      });
      paths.push({
        label: 'outbox → JetStream → consumer',
        dialect: d,
        r: await viaJetStream(o, d, natsUrl),
        target: true,
      });
      raws.push(await rawPublish(natsUrl, o.raw));
      if (server && o.restartEvents > 0) restarts.push([d, await acrossRestart(o, d, server)]);
    }
    const anchor = Math.max(...raws.map((r) => r.jetstream));
    const core = Math.max(...raws.map((r) => r.core));
    const blank = ['', '', '', ''];
    const headers = [
      'path',
      'store',
      'events/s',
      'p50',
      'p99',
      'paced p50',
      'paced p99',
      'vs js.publish',
      'target',
      'met',
    ];
    const rows: Cell[][] = [
      [
        `raw js.publish, msgID, 500 in flight (anchor, best of ${raws.length})`,
        '-',
        fmtRate(anchor),
        ...blank,
        '100%',
        '',
        '',
      ],
      [
        'raw core nc.publish + flush (context)',
        '-',
        fmtRate(core),
        ...blank,
        fmtPercent(core / anchor),
        '',
        '',
      ],
      ...paths.map(({ label, dialect, r, target }) => [
        label,
        dialect,
        fmtRate(r.rate),
        fmtMs(r.p50),
        fmtMs(r.p99),
        fmtMs(r.pacedP50),
        fmtMs(r.pacedP99),
        fmtPercent(r.rate / anchor),
        target ? '>= 50%' : '',
        target ? (r.rate / anchor >= 0.5 ? 'yes' : '**no**') : '',
      ]),
    ];
    printTable(headers, rows);
    console.log(`js.publish runs: ${raws.map((r) => fmtRate(r.jetstream)).join(', ')} msgs/s`);
    const cpu = (node: number, srv: number) =>
      `node ${node.toFixed(0)} ms + nats-server ${Number.isFinite(srv) ? srv.toFixed(0) : '?'} ms`;
    const bestRaw = raws.reduce((a, b) => (b.jetstream > a.jetstream ? b : a));
    console.log(`cpu per 1000: js.publish ${cpu(bestRaw.nodeCpu, bestRaw.serverCpu)}`);
    for (const { label, dialect, r } of paths)
      console.log(`cpu per 1000: ${label} (${dialect}) ${cpu(r.nodeCpu, r.serverCpu)}`);
    for (const [d, r] of restarts)
      console.log(
        `\nNATS restart (${d}): ${r.produced} events produced at 2000/s, server down ${(r.downMs / 1000).toFixed(1)} s; ` +
          `received ${r.received}, lost ${r.lost}, duplicates after dedup ${r.duplicates}` +
          (r.lost === 0 ? '  (target: lost 0 — met)' : '  (target: lost 0 — **NOT met**)'),
      );
    if (o.markdown) console.log(`\n${formatMarkdown(headers, rows)}`);
    const lost = restarts.filter(([, r]) => r.lost > 0);
    if (lost.length > 0)
      throw new Error(
        `events lost across the NATS restart: ${lost.map(([d, r]) => `${d} ${r.lost}`).join(', ')}`,
      );
  } finally {
    await server?.destroy();
  }
}
