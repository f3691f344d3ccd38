/**
 * One-off measurement (not a test): how long the dashboard's first view takes to render with
 * real volumes. Starts `runplane up` (SQLite, no workers), fills it with 100,000 jobs and
 * 10,000 runs through the API, then opens the dashboard in Chromium (already logged in) and
 * reports, per view, the time from navigation start until the view has rendered its data
 * (the `data-view-ready` mark), median of several cold page loads.
 *
 *   npm run build && node --import tsx test/browser/first-view.ts [jobs] [runs]
 */
import type { Page } from 'playwright-core';
import { RunplaneClient } from '../../src/client/client.js';
import { cleanup, startUp } from '../helpers/processes.js';
import { launchBrowser, newContext } from './support.js';

declare const document: { querySelector(selector: string): unknown };
declare const performance: { now(): number };
declare const sessionStorage: { setItem(k: string, v: string): void };

const JOBS = Number(process.argv[2] ?? 100_000);
const RUNS = Number(process.argv[3] ?? 10_000);
const LOADS = 7;

async function inParallel(
  total: number,
  concurrency: number,
  one: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await one(next++);
    }),
  );
}

async function firstRender(page: Page, url: string, ready: string): Promise<{ ready: number; dcl: number }> {
  await page.goto(url, { waitUntil: 'commit' });
  await page.waitForSelector(`[data-view-ready="${ready}"]`, { timeout: 60_000 });
  return page.evaluate(() => {
    const nav = (
      globalThis as unknown as {
        performance: { getEntriesByType(t: string): Array<{ domContentLoadedEventEnd: number }> };
      }
    ).performance.getEntriesByType('navigation')[0];
    return { ready: performance.now(), dcl: nav?.domContentLoadedEventEnd ?? Number.NaN };
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const up = await startUp({ workers: 0 });
  try {
    const admin = new RunplaneClient(up.url, up.adminToken);
    let t = Date.now();
    await inParallel(JOBS, 32, (i) =>
      admin.launchJob({ name: `load-${i}`, command: ['true'], labels: { shard: String(i % 100) } }),
    );
    console.log(`seeded ${JOBS} jobs in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    t = Date.now();
    await inParallel(RUNS, 32, (i) =>
      admin.createRun({ name: `run-${i}`, labels: { shard: String(i % 100) } }),
    );
    console.log(`seeded ${RUNS} runs in ${((Date.now() - t) / 1000).toFixed(1)} s`);

    const browser = await launchBrowser();
    try {
      const rows: string[] = [];
      for (const [view, hash, ready] of [
        ['overview', '', 'overview'],
        ['runs (live table, first page)', '#/runs', 'runs'],
        ['jobs (first page of 100,000)', '#/jobs', 'jobs'],
        ['jobs filtered by label', '#/jobs?label=shard%3D42', 'jobs'],
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
          const m = await firstRender(page, `${up.url}/${hash}`, ready);
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
    } finally {
      await browser.close();
    }
  } finally {
    await cleanup();
  }
}

await main();
