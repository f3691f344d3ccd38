/**
 * The dashboard's shared components at work, in a real headless Chromium against a real
 * `runplane up` process: the confirm dialogs of a run and a job (what their forms send, a
 * refusal shown inside the dialog), the filter bar, the cursor pager's page numbers (reload,
 * First/Previous/Next, a filter change back to page 1) and the state badges' tones. Each check
 * reads what the page shows and then what the API holds.
 */

import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, RunplaneClient } from '../../src/client/client.js';
import type { Heartbeat } from '../../src/runs/schemas.js';
import { eventually } from '../helpers/controller.js';
import { cleanup, sh, startUp, type UpProcess } from '../helpers/processes.js';
import { PG_URL, serviceAvailable } from '../helpers/services.js';
import { type DialectUnderTest, dropSchema } from '../helpers/store.js';
import { launchBrowser, login, newContext, open, textOf } from './support.js';

// Callbacks of page.evaluate and page.waitForFunction run in the page: the page's globals they use.
declare const document: {
  querySelector(selector: string): { textContent: string | null } | null;
  querySelectorAll(selector: string): ArrayLike<{ getAttribute(name: string): string | null }>;
};
declare const location: { hash: string };

const browserOk = await serviceAvailable('browser');
const pgOk = browserOk && (await serviceAvailable('postgres'));

describe.skipIf(!browserOk)('sqlite', () => actionsSuite('sqlite'));
describe.skipIf(!pgOk)('postgres', () => actionsSuite('postgres'));

const JOB_ROWS = '[data-testid=jobs-table] tbody tr[data-job-id]';
const RUN_ROWS = '[data-testid=runs-table] tbody tr[data-run-id]';
const PREVIOUS = '.pager button:has-text("Previous")';
const FIRST = '.pager button:has-text("First")';
const NEXT = '[data-testid=next-page]';

function actionsSuite(dialect: DialectUnderTest): void {
  const schema = dialect === 'postgres' ? `e2e_dashact_${process.pid}_${Date.now().toString(36)}` : null;
  const databaseUrl = schema ? { databaseUrl: `${PG_URL}?schema=${schema}` } : {};
  let up: UpProcess;
  let admin: RunplaneClient;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  let runId: string;

  beforeAll(async () => {
    up = await startUp({
      workers: 1,
      args: ['--worker-cpu', '4', '--heartbeat-min-interval', '100ms'],
      ...databaseUrl,
    });
    admin = new RunplaneClient(up.url, up.adminToken);
    const created = await admin.createRun({ name: 'tune-me', labels: { team: 'rl' } });
    runId = created.run_id;
    await heartbeat(new RunplaneClient(up.url, created.token), runId, {
      run_id: runId,
      status: 'running',
      step: 1,
      samples_per_sec: 1,
      loss: 1,
      checkpoint_version: 0,
    });
    browser = await launchBrowser();
    ctx = await newContext(browser);
    page = await login(ctx, up.url, up.adminToken);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await cleanup();
    if (schema) await dropSchema(schema);
  });

  it('tunes a run: typed values go out as numbers, empty fields stay out, the dialog closes', async () => {
    await open(page, `#/runs/${encodeURIComponent(runId)}`, 'run');
    await page.waitForSelector('[data-testid=run-status] >> text=running');
    await page.click('button[data-action=tune]');
    await page.waitForSelector('[data-testid=confirm-tune][open]');
    await page.fill('#tune-learning_rate', ' 0.001 ');
    await page.fill('#tune-clip_epsilon', '0.2');
    await page.fill('#tune-notes', 'lower lr');
    await page.click('[data-testid=confirm-tune] [data-testid=confirm]');
    await page.waitForSelector('[data-testid=command-trail] [data-command-type=tune]');
    await page.waitForSelector('[data-testid=confirm-tune]', { state: 'hidden' });

    const tunes = (await admin.listCommands(runId)).commands.filter((c) => c.type === 'tune');
    expect(tunes).toHaveLength(1);
    expect(tunes[0]?.payload).toEqual({ learning_rate: 0.001, clip_epsilon: 0.2, notes: 'lower lr' });
    expect(tunes[0]?.actor.type).toBe('operator');
  });

  it('shows a refused tune (422) inside the dialog, which stays open, and records nothing', async () => {
    await page.click('button[data-action=tune]');
    const dialog = '[data-testid=confirm-tune]';
    await page.waitForSelector(`${dialog}[open]`);
    await page.fill('#tune-learning_rate', '5');
    await page.fill('#tune-clip_epsilon', '');
    await page.fill('#tune-notes', '');
    await page.click(`${dialog} [data-testid=confirm]`);
    await page.waitForSelector(`${dialog} .error`);
    const error = await textOf(page, `${dialog} .error`);
    expect(error).toContain('payload.learning_rate');
    expect(error).toContain('OUT_OF_RANGE');
    // Still open, with what was typed, so it can be corrected; the confirm button is usable again.
    expect(await page.isVisible(`${dialog}[open]`)).toBe(true);
    expect(await page.inputValue('#tune-learning_rate')).toBe('5');
    expect(await page.isEnabled(`${dialog} [data-testid=confirm]`)).toBe(true);
    // Nothing reached the run: the trail still holds the one tune of the test before.
    const tunes = (await admin.listCommands(runId)).commands.filter((c) => c.type === 'tune');
    expect(tunes.map((c) => c.payload)).toEqual([
      { learning_rate: 0.001, clip_epsilon: 0.2, notes: 'lower lr' },
    ]);
    await page.click(`${dialog} button:has-text("Cancel")`);
    await page.waitForSelector(dialog, { state: 'hidden' });
    // Opened again, the dialog starts without the old error.
    await page.click('button[data-action=tune]');
    await page.waitForSelector(`${dialog}[open]`);
    expect(await page.locator(`${dialog} .error`).count()).toBe(0);
    await page.click(`${dialog} button:has-text("Cancel")`);
    await page.waitForSelector(dialog, { state: 'hidden' });
  });

  it("extends a run's liveness and shows the extension in the run's audit table", async () => {
    const dialog = '[data-testid="confirm-extend liveness"]';
    await page.click('button[data-action="extend liveness"]');
    await page.waitForSelector(`${dialog}[open]`);
    await page.fill('#liveness-s', '120');
    await page.fill('#liveness-reason', 'slow eval');
    await page.click(`${dialog} [data-testid=confirm]`);
    await page.waitForSelector(dialog, { state: 'hidden' });
    expect(await page.locator(`${dialog} .error`).count()).toBe(0);

    expect((await admin.getRun(runId)).liveness_extension_s).toBe(120);
    const audit = await admin.request<{ entries: Array<{ action: string; envelope: unknown }> }>(
      'GET',
      '/api/v1/audit',
      { query: { run_id: runId, action: 'run.liveness_extend' } },
    );
    expect(audit.entries.map((e) => e.envelope)).toEqual([{ extend_s: 120, reason: 'slow eval' }]);
    // The run page's audit table (it refreshes on its own) shows the entry.
    await page.waitForSelector('[data-testid=audit-table] code >> text="run.liveness_extend"');
  });

  it('terminates a run with a reason and a final checkpoint', async () => {
    const dialog = '[data-testid=confirm-terminate]';
    await page.click('button[data-action=terminate]');
    await page.waitForSelector(`${dialog}[open]`);
    await page.fill('#run-terminate-reason', 'done here');
    await page.check('#run-terminate-final');
    await page.click(`${dialog} [data-testid=confirm]`);
    await page.waitForSelector('[data-testid=command-trail] [data-command-type=terminate]');
    await page.waitForSelector(dialog, { state: 'hidden' });

    const terms = (await admin.listCommands(runId)).commands.filter((c) => c.type === 'terminate');
    expect(terms.map((c) => c.payload)).toEqual([{ reason: 'done here', final_checkpoint: true }]);
  });

  it('terminates a running job and records the reason', async () => {
    const job = (await admin.launchJob({ name: 'sleeper', command: sh('sleep 120') })).job_id;
    await eventually(async () => (await admin.getJob(job)).state === 'RUNNING');
    await open(page, `#/jobs/${encodeURIComponent(job)}`, 'job');
    await page.waitForSelector('h2 .badge >> text=RUNNING');
    const dialog = '[data-testid=confirm-terminate]';
    await page.click('button[data-action=terminate]');
    await page.waitForSelector(`${dialog}[open]`);
    await page.fill('#terminate-reason', 'not needed');
    await page.click(`${dialog} [data-testid=confirm]`);
    await page.waitForSelector('h2 .badge >> text=KILLED');
    await page.waitForSelector('.kv dd >> text="terminated: not needed"');
    expect(await page.getAttribute('h2 .badge', 'class')).toBe('badge tone-muted');
    expect(await page.isDisabled('button[data-action=terminate]')).toBe(true);

    const killed = await admin.getJob(job);
    expect(killed.state).toBe('KILLED');
    expect(killed.reason).toBe('terminated: not needed');
  });

  it('filters jobs by label and pages through them, across a reload and back', async () => {
    for (let i = 0; i < 53; i++)
      await admin.launchJob({ name: `b-${i}`, command: ['true'], labels: { batch: 'b2' } });
    // Newer jobs without the label: the unfiltered first page is not the filtered one.
    for (let i = 0; i < 2; i++)
      await admin.launchJob({ name: `other-${i}`, command: ['true'], labels: { batch: 'b9' } });
    const p1 = await admin.listJobs({ label: 'batch=b2', limit: 50 });
    expect(p1.jobs).toHaveLength(50);
    expect(p1.next_cursor).not.toBeNull();
    const p2 = await admin.listJobs({ label: 'batch=b2', limit: 50, cursor: p1.next_cursor! });
    expect(p2.jobs).toHaveLength(3);
    const ids1 = p1.jobs.map((j) => j.job_id);
    const ids2 = p2.jobs.map((j) => j.job_id);

    await open(page, '#/jobs', 'jobs');
    await page.fill('input[name=label]', 'batch=b2');
    await page.click('form.filters button[type=submit]');
    await page.waitForFunction(() => location.hash.includes('label=batch%3Db2'));
    await showsPage(page, JOB_ROWS, 'data-job-id', ids1, 'page 1 · 50 shown');
    expect(await page.isDisabled(PREVIOUS)).toBe(true);
    expect(await page.isDisabled(FIRST)).toBe(true);
    expect(await page.isEnabled(NEXT)).toBe(true);

    await page.click(NEXT);
    await showsPage(page, JOB_ROWS, 'data-job-id', ids2, 'page 2 · 3 shown');
    expect(await page.isDisabled(NEXT)).toBe(true);
    expect(await page.isEnabled(PREVIOUS)).toBe(true);

    // A reload stays on page 2, and says so.
    await page.reload();
    await page.waitForSelector('[data-view-ready=jobs]');
    await showsPage(page, JOB_ROWS, 'data-job-id', ids2, 'page 2 · 3 shown');
    expect(await page.inputValue('input[name=label]')).toBe('batch=b2');

    await page.click(PREVIOUS);
    await showsPage(page, JOB_ROWS, 'data-job-id', ids1, 'page 1 · 50 shown');
    expect(await page.isDisabled(PREVIOUS)).toBe(true);

    // On page 2, a filter change goes back to page 1 and keeps the other filters.
    await page.click(NEXT);
    await showsPage(page, JOB_ROWS, 'data-job-id', ids2, 'page 2 · 3 shown');
    const labelled = [...ids1, ...ids2];
    await eventually(async () => {
      const states = await Promise.all(labelled.map(async (id) => (await admin.getJob(id)).state));
      return states.every((s) => s === 'SUCCEEDED');
    }, 60_000);
    await page.selectOption('form.filters label:has-text("State") select', 'SUCCEEDED');
    await page.waitForFunction(() => location.hash.includes('state=SUCCEEDED'));
    const hash = await page.evaluate(() => location.hash);
    expect(hash).toContain('label=batch%3Db2');
    expect(hash).not.toContain('cursor=');
    expect(hash).not.toContain('back=');
    const succeeded = await admin.listJobs({ label: 'batch=b2', state: 'SUCCEEDED', limit: 50 });
    expect(succeeded.jobs.map((j) => j.job_id)).toEqual(ids1);
    await showsPage(page, JOB_ROWS, 'data-job-id', ids1, 'page 1 · 50 shown');
    expect(await page.isDisabled(PREVIOUS)).toBe(true);
  }, 120_000);

  it('walks three pages of runs forward and back, and a reload keeps page 3', async () => {
    for (let i = 0; i < 5; i++) await admin.createRun({ name: `r-${i}`, labels: { grp: 'g' } });
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const p = await admin.listRuns({ label: 'grp=g', limit: 2, ...(cursor ? { cursor } : {}) });
      pages.push(p.runs.map((r) => r.run_id));
      cursor = p.next_cursor ?? undefined;
    } while (cursor);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    const [r1, r2, r3] = pages as [string[], string[], string[]];

    await open(page, '#/runs?label=grp%3Dg&limit=2', 'runs');
    await showsPage(page, RUN_ROWS, 'data-run-id', r1, 'page 1 · 2 shown');
    await page.click(NEXT);
    await showsPage(page, RUN_ROWS, 'data-run-id', r2, 'page 2 · 2 shown');
    await page.click(NEXT);
    await showsPage(page, RUN_ROWS, 'data-run-id', r3, 'page 3 · 1 shown');
    expect(await page.isDisabled(NEXT)).toBe(true);

    await page.reload();
    await page.waitForSelector('[data-view-ready=runs]');
    await showsPage(page, RUN_ROWS, 'data-run-id', r3, 'page 3 · 1 shown');

    await page.click(PREVIOUS);
    await showsPage(page, RUN_ROWS, 'data-run-id', r2, 'page 2 · 2 shown');
    await page.click(PREVIOUS);
    await showsPage(page, RUN_ROWS, 'data-run-id', r1, 'page 1 · 2 shown');
    expect(await page.isDisabled(PREVIOUS)).toBe(true);

    // First goes straight back from page 3.
    await page.click(NEXT);
    await showsPage(page, RUN_ROWS, 'data-run-id', r2, 'page 2 · 2 shown');
    await page.click(NEXT);
    await showsPage(page, RUN_ROWS, 'data-run-id', r3, 'page 3 · 1 shown');
    await page.click(FIRST);
    await showsPage(page, RUN_ROWS, 'data-run-id', r1, 'page 1 · 2 shown');
  });

  it('draws the overview counts in their states’ tones', async () => {
    await open(page, '#/', 'overview');
    // The counts are the store's: one killed job, 55 finished, five runs never started.
    await countIs(page, 'KILLED', '1');
    await countIs(page, 'SUCCEEDED', '55');
    await countIs(page, 'queued', '5');
    const tone = (state: string) => page.getAttribute(`[data-count="${state}"] .badge`, 'class');
    expect(await tone('RUNNING')).toBe('badge tone-ok');
    expect(await tone('FAILED')).toBe('badge tone-bad');
    expect(await tone('KILLED')).toBe('badge tone-muted');
    expect(await tone('PENDING')).toBe('badge tone-idle');
    expect(await tone('running')).toBe('badge tone-ok');
    expect(await tone('paused')).toBe('badge tone-warn');
    expect(await tone('queued')).toBe('badge tone-idle');
    expect(await tone('terminated')).toBe('badge tone-muted');
    expect(await tone('heartbeat_stale')).toBe('badge tone-warn');
    expect(await tone('unresponsive')).toBe('badge tone-bad');
  });
}

/** Waits until the list shows exactly these rows, in this order, and the pager says `pager`. */
async function showsPage(
  page: Page,
  rows: string,
  attr: string,
  ids: string[],
  pager: string,
): Promise<void> {
  try {
    await page.waitForFunction(
      ([sel, a, want, text]) =>
        Array.from(document.querySelectorAll(sel), (e) => e.getAttribute(a) ?? '').join(',') ===
          want.join(',') && document.querySelector('.pager .muted')?.textContent?.trim() === text,
      [rows, attr, ids, pager] as const,
    );
  } catch (err) {
    const now = await page.evaluate(
      ([sel, a]) => ({
        ids: Array.from(document.querySelectorAll(sel), (e) => e.getAttribute(a) ?? '').join(','),
        pager: document.querySelector('.pager .muted')?.textContent?.trim(),
      }),
      [rows, attr] as const,
    );
    throw new Error(
      `expected "${pager}" with ${ids.join(',')}; ${page.url()} shows "${now.pager}" with ${now.ids}`,
      { cause: err },
    );
  }
}

/** Waits until the overview's count of a state reads `n`. */
async function countIs(page: Page, state: string, n: string): Promise<void> {
  await page.waitForFunction(
    ([s, want]) => document.querySelector(`[data-count="${s}"] .num`)?.textContent?.trim() === want,
    [state, n] as const,
  );
}

/** A learner's heartbeat; one sooner than the minimum interval after the last (429) is sent again a bit later. */
async function heartbeat(learner: RunplaneClient, runId: string, body: Heartbeat): Promise<void> {
  for (;;) {
    try {
      await learner.heartbeat(runId, body);
      return;
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 429) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
