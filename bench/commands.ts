/**
 * `npm run bench -- commands`: the time from `POST /runs/{id}/commands` to the learner's
 * long-poll (`GET /runs/{id}/commands/next?wait=30`) returning that command, p50/p99, with many
 * learners polling at once. Commands go one at a time, round robin over the runs; each learner
 * acknowledges what it gets and polls again, as the learner clients do.
 */
import { randomUUID } from 'node:crypto';
import { RunplaneClient } from '../src/client/client.js';
import { type Dialect, freshDb, percentile, pgReachable } from './lib/bench-db.js';
import { startControllerProcess } from './lib/controller-process.js';
import { LoadClient } from './lib/http-load.js';
import { parseFlags } from './lib/options.js';
import { printTable } from './lib/table.js';
import { machineLine, mapLimit, nowMs } from './lib/timing.js';

export const usage = `npm run bench -- commands [options]

  --learners <n>   runs whose learners long-poll at once, default 100
  --commands <n>   commands measured (sent one at a time), default 1000
  --warmup <n>     commands sent first and not measured, default 200
  --dialect <d>    sqlite | postgres | both (default both)
  --profile <dir>  run the controller with --cpu-prof, profiles written to <dir>
  --built          run the built controller (dist/, as \`npx runplane up\` does) instead of src/
                   under tsx; dist/ must be up to date (npm run build)
  --markdown       also print the table as markdown (for bench/RESULTS.md)`;

const ADMIN = 'rp_bench_admin_token_0123456789abcdef';
const TARGET_P99_MS = 10;

interface Options {
  learners: number;
  commands: number;
  warmup: number;
  dialects: Dialect[];
  markdown: boolean;
  profile: string | null;
  built: boolean;
}

function options(argv: string[]): Options {
  const f = parseFlags(argv, {
    learners: 'string',
    commands: 'string',
    warmup: 'string',
    dialect: 'string',
    markdown: 'boolean',
    profile: 'string',
    built: 'boolean',
  });
  return {
    learners: f.int('learners', 100),
    commands: f.int('commands', 1000),
    warmup: f.int('warmup', 200),
    dialects: f.dialects('dialect', 'both'),
    markdown: f.bool('markdown'),
    profile: f.str('profile') ?? null,
    built: f.bool('built'),
  };
}

interface Measured {
  p50: number;
  p99: number;
  max: number;
  /** The POST alone (accepted and durable), p50. */
  postP50: number;
}

async function measure(dialect: Dialect, o: Options): Promise<Measured> {
  const db = freshDb(dialect);
  const ctl = await startControllerProcess(
    { databaseUrl: db.url, dataDir: db.dir, adminToken: ADMIN, workers: 0, heartbeatMinIntervalMs: '0ms' },
    o.profile,
    false,
    o.built,
  );
  const admin = new RunplaneClient(ctl.url, ADMIN);
  const polls = new LoadClient(ctl.url, o.learners * 2);
  const sender = new LoadClient(ctl.url, 4);
  const delivered = new Map<string, (t: number) => void>();
  let stopping = false;
  try {
    const runs = await mapLimit(
      Array.from({ length: o.learners }, (_, i) => i),
      16,
      async (i) => {
        const r = await admin.createRun({ name: `learner-${i}` });
        // Pause needs a running run; tune does not, so the benchmark sends tunes.
        return r;
      },
    );
    const learnerLoop = async (runId: string, token: string) => {
      while (!stopping) {
        const res = await polls.send('GET', `/api/v1/runs/${runId}/commands/next?wait=30`, token);
        const t = nowMs();
        if (res.status === 204) continue;
        if (res.status !== 200) {
          if (!stopping) console.error(`poll answered ${res.status}: ${res.body.slice(0, 200)}`);
          return;
        }
        const cmd = JSON.parse(res.body) as { id: string };
        delivered.get(cmd.id)?.(t);
        await polls.send('POST', `/api/v1/runs/${runId}/commands/${cmd.id}/ack`, token);
      }
    };
    const loops = runs.map((r) => learnerLoop(r.run_id, r.token));
    // Let every learner's first poll arrive before measuring.
    await new Promise((r) => setTimeout(r, 500));
    const latencies: number[] = [];
    const posts: number[] = [];
    for (let i = 0; i < o.warmup + o.commands; i++) {
      const run = runs[i % runs.length];
      if (!run) break;
      const id = randomUUID();
      const got = new Promise<number>((resolve) => delivered.set(id, resolve));
      const body = JSON.stringify({
        id,
        type: 'tune',
        issued_at: new Date().toISOString(),
        actor: { type: 'system', id: 'bench' },
        payload: { learning_rate: 0.001 },
      });
      const t0 = nowMs();
      const res = await sender.send('POST', `/api/v1/runs/${run.run_id}/commands`, ADMIN, body);
      if (res.status !== 202) throw new Error(`command answered ${res.status}: ${res.body}`);
      const posted = nowMs();
      const t1 = await got;
      delivered.delete(id);
      if (i < o.warmup) continue;
      posts.push(posted - t0);
      latencies.push(t1 - t0);
    }
    stopping = true;
    latencies.sort((a, b) => a - b);
    posts.sort((a, b) => a - b);
    polls.close();
    await Promise.allSettled(loops);
    return {
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      max: latencies[latencies.length - 1] ?? Number.NaN,
      postP50: percentile(posts, 0.5),
    };
  } finally {
    stopping = true;
    polls.close();
    sender.close();
    await ctl.stop();
    await db.cleanup();
  }
}

export async function runCommands(argv: string[]): Promise<void> {
  const o = options(argv);
  console.log(machineLine());
  console.log(
    `${o.learners} learners long-polling, ${o.commands} commands sent one at a time after ${o.warmup} not measured\n`,
  );
  const rows: Array<Array<string | number>> = [];
  for (const dialect of o.dialects) {
    if (dialect === 'postgres') {
      const why = await pgReachable();
      if (why) {
        rows.push([dialect, 'skipped', '', '', '', '', why]);
        continue;
      }
    }
    const r = await measure(dialect, o);
    rows.push([
      dialect,
      r.p50.toFixed(2),
      r.p99.toFixed(2),
      r.max.toFixed(2),
      r.postP50.toFixed(2),
      `p99 <= ${TARGET_P99_MS} ms`,
      r.p99 <= TARGET_P99_MS ? 'met' : 'NOT met',
    ]);
  }
  const headers = ['store', 'p50 ms', 'p99 ms', 'max ms', 'POST alone p50 ms', 'goal', 'result'];
  printTable(headers, rows, o.markdown);
}
