/**
 * `npm run bench -- heartbeats`: 1,000 simulated learners heartbeating over loopback into a
 * real controller (its own process; the 429 floor lowered to 0 so the rate is not capped),
 * closed loop with a fixed number of requests in flight; heartbeats/s and p50/p99 latency,
 * beside bare Fastify answering the same POST with the same load generator in the same run.
 */
import { RunplaneClient } from '../src/client/client.js';
import { type Dialect, freshDb, percentile, pgReachable } from './lib/bench-db.js';
import { startControllerProcess, startReadyProcess } from './lib/controller-process.js';
import { LoadClient } from './lib/http-load.js';
import { parseFlags } from './lib/options.js';
import { printTable } from './lib/table.js';
import { fmtPercent, fmtRate, machineLine, mapLimit, nowMs } from './lib/timing.js';

export const usage = `npm run bench -- heartbeats [options]

  --learners <n>      simulated learners (runs), default 1000
  --concurrency <n>   heartbeats in flight at once, default 16
  --seconds <n>       measured seconds per target, default 10
  --dialect <d>       sqlite | postgres | both (default both)
  --profile <dir>     run the controller with --cpu-prof, profiles written to <dir>
  --built             run the built controller (dist/, as \`npx runplane up\` does) instead of
                      src/ under tsx; dist/ must be up to date (npm run build)
  --markdown          also print the table as markdown (for bench/RESULTS.md)`;

const ADMIN = 'rp_bench_admin_token_0123456789abcdef';
const TARGET: Record<Dialect, number> = { sqlite: 0.25, postgres: 0.1 };
const TARGET_P99_MS = 20;

interface Learner {
  runId: string;
  token: string;
  step: number;
}

interface LoadResult {
  rate: number;
  p50: number;
  p99: number;
  errors: number;
}

/** Closed loop: `concurrency` loops, each taking the next learner in turn, for `seconds`. */
async function drive(
  client: LoadClient,
  learners: Learner[],
  concurrency: number,
  seconds: number,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const warmupEnd = nowMs() + 1000;
  const end = warmupEnd + seconds * 1000;
  let counted = 0;
  const loop = async (): Promise<void> => {
    while (nowMs() < end) {
      const l = learners[next++ % learners.length] as Learner;
      l.step += 1;
      const body = JSON.stringify({
        run_id: l.runId,
        status: 'running',
        step: l.step,
        samples_per_sec: 1024,
        loss: 1 / l.step,
        checkpoint_version: Math.floor(l.step / 100),
      });
      const t0 = nowMs();
      const res = await client.send('POST', `/api/v1/runs/${l.runId}/heartbeat`, l.token, body);
      const t1 = nowMs();
      if (t0 < warmupEnd) continue;
      if (t1 > end) break;
      if (res.status !== 200) {
        errors += 1;
        if (errors <= 3) console.error(`heartbeat answered ${res.status}: ${res.body.slice(0, 200)}`);
        continue;
      }
      counted += 1;
      latencies.push(t1 - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => loop()));
  latencies.sort((a, b) => a - b);
  return {
    rate: counted / seconds,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    errors,
  };
}

interface Options {
  learners: number;
  concurrency: number;
  seconds: number;
  dialects: Dialect[];
  markdown: boolean;
  profile: string | null;
  built: boolean;
}

function options(argv: string[]): Options {
  const f = parseFlags(argv, {
    learners: 'string',
    concurrency: 'string',
    seconds: 'string',
    dialect: 'string',
    markdown: 'boolean',
    profile: 'string',
    built: 'boolean',
  });
  return {
    learners: f.int('learners', 1000),
    concurrency: f.int('concurrency', 16),
    seconds: f.int('seconds', 10),
    dialects: f.dialects('dialect', 'both'),
    markdown: f.bool('markdown'),
    profile: f.str('profile') ?? null,
    built: f.bool('built'),
  };
}

async function controllerRun(dialect: Dialect, o: Options): Promise<LoadResult> {
  const db = freshDb(dialect);
  const ctl = await startControllerProcess(
    {
      databaseUrl: db.url,
      dataDir: db.dir,
      adminToken: ADMIN,
      workers: 0,
      heartbeatMinIntervalMs: '0ms',
      // The liveness monitor and relay run as in production; nobody goes quiet here.
    },
    o.profile,
    false,
    o.built,
  );
  const admin = new RunplaneClient(ctl.url, ADMIN);
  const learners = await mapLimit(
    Array.from({ length: o.learners }, (_, i) => i),
    16,
    async (i): Promise<Learner> => {
      const r = await admin.createRun({ name: `learner-${i}` });
      return { runId: r.run_id, token: r.token, step: 0 };
    },
  );
  const client = new LoadClient(ctl.url, o.concurrency);
  try {
    return await drive(client, learners, o.concurrency, o.seconds);
  } finally {
    client.close();
    await ctl.stop();
    await db.cleanup();
  }
}

async function bareRun(o: Options): Promise<LoadResult> {
  const bare = await startReadyProcess(new URL('./lib/bare-fastify.ts', import.meta.url));
  const learners = Array.from({ length: o.learners }, (_, i) => ({
    runId: `run_${i}`,
    token: ADMIN,
    step: 0,
  }));
  const client = new LoadClient(bare.url, o.concurrency);
  try {
    return await drive(client, learners, o.concurrency, o.seconds);
  } finally {
    client.close();
    await bare.stop();
  }
}

export async function runHeartbeats(argv: string[]): Promise<void> {
  const o = options(argv);
  console.log(machineLine());
  console.log(
    `${o.learners} learners, ${o.concurrency} heartbeats in flight, ${o.seconds}s measured after 1s warm-up\n`,
  );
  const anchor = await bareRun(o);
  const rows: Array<Array<string | number>> = [
    [
      'bare Fastify (anchor)',
      fmtRate(anchor.rate),
      anchor.p50.toFixed(2),
      anchor.p99.toFixed(2),
      '100%',
      '',
      '',
    ],
  ];
  for (const dialect of o.dialects) {
    if (dialect === 'postgres') {
      const why = await pgReachable();
      if (why) {
        rows.push([`runplane ${dialect}`, 'skipped', '', '', '', '', why]);
        continue;
      }
    }
    const r = await controllerRun(dialect, o);
    const ratio = r.rate / anchor.rate;
    const ok = ratio >= TARGET[dialect] && r.p99 <= TARGET_P99_MS;
    rows.push([
      `runplane ${dialect}`,
      fmtRate(r.rate),
      r.p50.toFixed(2),
      r.p99.toFixed(2),
      fmtPercent(ratio),
      `>= ${fmtPercent(TARGET[dialect])}, p99 <= ${TARGET_P99_MS} ms`,
      `${ok ? 'met' : 'NOT met'}${r.errors ? ` (${r.errors} errors)` : ''}`,
    ]);
  }
  const headers = ['target', 'heartbeats/s', 'p50 ms', 'p99 ms', 'of anchor', 'goal', 'result'];
  printTable(headers, rows, o.markdown);
}
