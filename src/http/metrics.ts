import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface MetricSources {
  jobsByState(): Promise<Array<{ state: string; n: number }>>;
  workersByHealth(): Promise<Array<{ health: string; n: number }>>;
  /** Absent where the process has no runs (e.g. a bare app in a test). */
  runsByStatusHealth?(): Promise<Array<{ status: string; health: string; n: number }>>;
  /** The queue monitors' readings (coordination); absent in a bare app. */
  queueReadings?(): Promise<Array<{ queue: string; depth: number; level_index: number; throttle: number }>>;
}

/**
 * Prometheus metrics of one controller. Counts by state are read from the store at scrape
 * time, so they are right after a restart and across replicas.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly schedulingPass: Histogram;
  readonly placements: Counter;
  readonly heartbeats: Counter;

  constructor(sources: MetricSources) {
    collectDefaultMetrics({ register: this.registry, prefix: 'runplane_process_' });
    this.httpDuration = new Histogram({
      name: 'runplane_http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30],
      registers: [this.registry],
    });
    this.schedulingPass = new Histogram({
      name: 'runplane_scheduling_pass_duration_seconds',
      help: 'Duration of one scheduling pass (decide + persist)',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      registers: [this.registry],
    });
    this.placements = new Counter({
      name: 'runplane_placements_total',
      help: 'Attempts placed on workers',
      registers: [this.registry],
    });
    this.heartbeats = new Counter({
      name: 'runplane_heartbeats_accepted_total',
      help: 'Learner heartbeats accepted',
      registers: [this.registry],
    });
    new Gauge({
      name: 'runplane_runs',
      help: 'Runs by status and health',
      labelNames: ['status', 'health'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const { status, health, n } of (await sources.runsByStatusHealth?.()) ?? [])
          this.set({ status, health }, n);
      },
    });
    new Gauge({
      name: 'runplane_jobs',
      help: 'Jobs by state',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const { state, n } of await sources.jobsByState()) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'runplane_queue_depth',
      help: 'Jobs waiting for placement (PENDING)',
      registers: [this.registry],
      async collect() {
        const rows = await sources.jobsByState();
        this.set(rows.find((r) => r.state === 'PENDING')?.n ?? 0);
      },
    });
    // One scrape reads the queues once; the three gauges share that reading.
    let queueReads: ReturnType<NonNullable<MetricSources['queueReadings']>> | null = null;
    const queues = () => {
      queueReads ??= (sources.queueReadings?.() ?? Promise.resolve([])).finally(() => {
        queueReads = null;
      });
      return queueReads;
    };
    for (const [name, help, pick] of [
      ['runplane_queue_monitor_depth', 'Depth of each monitored queue', (r: { depth: number }) => r.depth],
      [
        'runplane_queue_backpressure_level',
        'Backpressure level per queue (0 none, 1 low, 2 medium, 3 high, 4 critical)',
        (r: { level_index: number }) => r.level_index,
      ],
      [
        'runplane_queue_throttle_factor',
        'Throttle factor producers apply per queue (1 = full speed)',
        (r: { throttle: number }) => r.throttle,
      ],
    ] as const) {
      new Gauge({
        name,
        help,
        labelNames: ['queue'],
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const r of await queues()) this.set({ queue: r.queue }, (pick as (x: typeof r) => number)(r));
        },
      });
    }
    new Gauge({
      name: 'runplane_workers',
      help: 'Workers by health',
      labelNames: ['health'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const { health, n } of await sources.workersByHealth()) this.set({ health }, n);
      },
    });
  }
}
