/**
 * One-off measurement (not a test): how long the dashboard's first view takes to render with
 * real volumes. Starts `runplane up` (SQLite, no workers), fills it with 100,000 jobs and
 * 10,000 runs (see seed()), then opens the dashboard in Chromium (already logged in) and
 * reports, per view, the time from navigation start until the view has rendered its data
 * (the `data-view-ready` mark), median of several cold page loads.
 *
 *   npm run build && node --import tsx test/browser/first-view.ts [jobs] [runs]
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Page } from 'playwright-core';
import { RunplaneClient } from '../../src/client/client.js';
import { cleanup, startUp } from '../helpers/processes.js';
import { launchBrowser, newContext } from './support.js';

declare const sessionStorage: { setItem(k: string, v: string): void };

const JOBS = Number(process.argv[2] ?? 100_000);
const RUNS = Number(process.argv[3] ?? 10_000);
const LOADS = 7;

/**
 * One job and one run are made through the API; the rest are copies of them made in SQL (with
 * their own ids, names, label rows and a mix of states), so seeding takes seconds, not the half
 * hour 110,000 API calls take on a busy 2-core machine. The views only read them.
 */
async function seed(admin: RunplaneClient, dbFile: string): Promise<void> {
  const { job_id } = await admin.launchJob({ name: 'template', command: ['true'], labels: { shard: '0' } });
  const { run_id } = await admin.createRun({ name: 'template', labels: { shard: '0' } });
  const db = new Database(dbFile);
  db.pragma('busy_timeout = 30000');
  const now = Date.now();
  db.transaction(() => {
    const jobCols = (
      db.prepare('select name from pragma_table_info(?)').all('jobs') as Array<{ name: string }>
    )
      .map((c) => c.name)
      .filter((c) => c !== 'seq');
    const jobOverrides: Record<string, string> = {
      id: "'job_seed_' || n.i",
      name: "'load-' || n.i",
      labels: "json_object('shard', CAST(n.i % 100 AS TEXT))",
      state:
        "CASE WHEN n.i % 1000 = 0 THEN 'PENDING' WHEN n.i % 10 = 1 THEN 'FAILED' WHEN n.i % 10 = 2 THEN 'KILLED' ELSE 'SUCCEEDED' END",
      submitted_at: `${now} - (${JOBS} - n.i) * 1000`,
      updated_at: `${now}`,
    };
    db.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO jobs (${jobCols.join(', ')})
       SELECT ${jobCols.map((c) => jobOverrides[c] ?? `t.${c}`).join(', ')} FROM n, jobs t WHERE t.id = ?`,
    ).run(JOBS - 1, job_id);
    db.prepare(
      `INSERT INTO job_labels (job_id, job_seq, key, value)
       SELECT id, seq, 'shard', json_extract(labels, '$.shard') FROM jobs WHERE id LIKE 'job_seed_%'`,
    ).run();
    const runCols = (
      db.prepare('select name from pragma_table_info(?)').all('runs') as Array<{ name: string }>
    )
      .map((c) => c.name)
      .filter((c) => c !== 'seq');
    const runOverrides: Record<string, string> = {
      id: "'run_seed_' || n.i",
      name: "'run-' || n.i",
      labels: "json_object('shard', CAST(n.i % 100 AS TEXT))",
      status: "CASE WHEN n.i % 10 = 1 THEN 'failed' WHEN n.i % 10 = 2 THEN 'terminated' ELSE 'completed' END",
      step: 'n.i * 10',
      loss: '1.0 / n.i',
      created_at: `${now} - (${RUNS} - n.i) * 1000`,
      updated_at: `${now}`,
      ended_at: `${now}`,
    };
    db.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO runs (${runCols.join(', ')})
       SELECT ${runCols.map((c) => runOverrides[c] ?? `t.${c}`).join(', ')} FROM n, runs t WHERE t.id = ?`,
    ).run(RUNS - 1, run_id);
    db.prepare(
      `INSERT INTO run_labels (run_id, run_seq, key, value)
       SELECT id, seq, 'shard', json_extract(labels, '$.shard') FROM runs WHERE id LIKE 'run_seed_%'`,
    ).run();
  })();
  db.close();
}

async function firstRender(
  page: Page,
  url: string,
  selector: string,
): Promise<{ ready: number; dcl: number }> {
  await page.goto(url, { waitUntil: 'commit' });
  await page.waitForSelector(selector, { timeout: 60_000 });
  return page.evaluate(() => {
    const nav = (
      globalThis as unknown as {
        performance: { getEntriesByType(t: string): Array<{ domContentLoadedEventEnd: number }> };
      }
    ).performance.getEntriesByType('navigation')[0];
    return {
      ready: (globalThis as unknown as { performance: { now(): number } }).performance.now(),
      dcl: nav?.domContentLoadedEventEnd ?? Number.NaN,
    };
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const up = await startUp({ workers: 0 });
  try {
    const admin = new RunplaneClient(up.url, up.adminToken);
    const t = Date.now();
    await seed(admin, join(up.dataDir, 'runplane.db'));
    console.log(`seeded ${JOBS} jobs and ${RUNS} runs in ${((Date.now() - t) / 1000).toFixed(1)} s`);

    // The API requests the first views make, timed alone (median of LOADS).
    const api: string[] = [];
    for (const path of [
      '/api/v1/whoami',
      '/metrics',
      '/api/v1/runs?limit=50',
      '/api/v1/runs?health=unresponsive&limit=20',
      '/api/v1/jobs?limit=50',
      '/api/v1/jobs?label=shard%3D42&limit=50',
      '/api/v1/jobs?state=FAILED&limit=50',
    ]) {
      const ms: number[] = [];
      for (let i = 0; i < LOADS; i++) {
        const t0 = performance.now();
        const res = await fetch(`${up.url}${path}`, {
          headers: { authorization: `Bearer ${up.adminToken}` },
        });
        await res.arrayBuffer();
        ms.push(performance.now() - t0);
        if (!res.ok) throw new Error(`${path}: ${res.status}`);
      }
      api.push(`| \`GET ${path}\` | ${median(ms).toFixed(1)} ms |`);
    }

    const browser = await launchBrowser();
    try {
      const rows: string[] = [];
      for (const [view, hash, selector] of [
        ['overview: counts and throughput', '', '[data-view-ready=overview]'],
        ['overview: with its alerts', '', '[data-alerts-ready=overview]'],
        ['runs (live table, first page)', '#/runs', '[data-view-ready=runs]'],
        ['jobs (first page of 100,000)', '#/jobs', '[data-view-ready=jobs]'],
        ['jobs filtered by label', '#/jobs?label=shard%3D42', '[data-view-ready=jobs]'],
      ] as const) {
        const readyMs: number[] = [];
        const dclMs: number[] = [];
        for (let i = 0; i < LOADS; i++) {
          // A fresh context each time: a cold cache, as a first visit.
          const ctx = await newContext(browser);
          await ctx.addInitScript(
            (token: string) => sessionStorage.setItem('runplane.token', token),
            up.adminToken,
          );
          const page = await ctx.newPage();
          const m = await firstRender(page, `${up.url}/${hash}`, selector);
          readyMs.push(m.ready);
          dclMs.push(m.dcl);
          await ctx.close();
        }
        rows.push(
          `| ${view} | ${median(dclMs).toFixed(0)} ms | ${median(readyMs).toFixed(0)} ms | ${Math.max(...readyMs).toFixed(0)} ms |`,
        );
      }
      console.log(`\n${JOBS} jobs, ${RUNS} runs, SQLite; median of ${LOADS} cold loads\n`);
      console.log('| view | DOM ready | rendered with data | slowest |');
      console.log('|---|---|---|---|');
      for (const r of rows) console.log(r);
      console.log('\n| request | median |\n|---|---|');
      for (const r of api) console.log(r);
    } finally {
      await browser.close();
    }
  } finally {
    await cleanup();
  }
}

await main();
