/**
 * The dashboard in a real headless Chromium against a real `runplane up` process: log in, watch
 * a run change live as its learner heartbeats, pause it and see the learner's acknowledgement,
 * page through jobs, check that a viewer gets no action buttons, and save a screenshot of each
 * main view into docs/screenshots/.
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, RunplaneClient } from '../../src/client/client.js';
import type { Heartbeat } from '../../src/runs/schemas.js';
import { eventually } from '../helpers/controller.js';
import { cleanup, sh, startUp, tempDir, type UpProcess } from '../helpers/processes.js';
import { PG_URL, serviceAvailable } from '../helpers/services.js';
import { type DialectUnderTest, dropSchema } from '../helpers/store.js';
import { launchBrowser, login, newContext, open, screenshot, textOf } from './support.js';

// Callbacks of page.evaluate and page.waitForFunction run in the page: the page's globals they use.
declare const document: {
  querySelector(selector: string): { textContent: string | null } | null;
  querySelectorAll(selector: string): { length: number };
};
declare const sessionStorage: { getItem(key: string): string | null };
declare const localStorage: { length: number };
declare const location: { href: string };

const browserOk = await serviceAvailable('browser');
const pgOk = browserOk && (await serviceAvailable('postgres'));

describe.skipIf(!browserOk)('sqlite', () => dashboardSuite('sqlite'));
describe.skipIf(!pgOk)('postgres', () => dashboardSuite('postgres'));

function dashboardSuite(dialect: DialectUnderTest): void {
  // One set of pictures for the docs: the SQLite pass takes them.
  const shoot = dialect === 'sqlite' ? screenshot : async () => undefined;
  const schema = dialect === 'postgres' ? `e2e_dash_${process.pid}_${Date.now().toString(36)}` : null;
  const databaseUrl = schema ? { databaseUrl: `${PG_URL}?schema=${schema}` } : {};
  let up: UpProcess;
  let admin: RunplaneClient;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  let viewerToken: string;
  let runId: string;
  let learner: RunplaneClient;
  let longJob: string;
  let sweepId: string | null = null;

  beforeAll(async () => {
    up = await startUp({
      workers: 1,
      args: ['--worker-cpu', '4', '--heartbeat-min-interval', '100ms'],
      ...databaseUrl,
    });
    admin = new RunplaneClient(up.url, up.adminToken);
    viewerToken = (await admin.createToken('viewer', 'dash-viewer')).token;
    const created = await admin.createRun({
      name: 'ppo-live',
      config: { env: 'CartPole-v1', learning_rate: 0.0003 },
      labels: { team: 'rl' },
    });
    runId = created.run_id;
    learner = new RunplaneClient(up.url, created.token);
    longJob = (
      await admin.launchJob({
        name: 'trainer-tail',
        command: sh('for i in 1 2 3; do echo "epoch $i loss 0.$i"; done; echo warn >&2; sleep 120'),
        labels: { team: 'rl' },
      })
    ).job_id;
    await admin.createPod({ participants: ['alpha', 'bravo', 'charlie', 'delta'], seed: 7 });
    if (await served(up, '/api/v1/models')) {
      await admin.request('POST', '/api/v1/models', {
        body: {
          config_key: 'hex8_2p',
          path: 'models/hex8_2p/v3.pt',
          state: 'staging',
          metrics: { elo: 1512.5 },
        },
      });
    }
    // A small two-objective sweep whose trials run on the embedded worker while the tests go on.
    if (await served(up, '/api/v1/sweeps')) {
      const sweep = await admin.createSweep({
        name: 'dash-sweep',
        objectives: [
          { metric: 'loss', direction: 'minimize' },
          { metric: 'latency_ms', direction: 'minimize' },
        ],
        parameters: {
          lr: { type: 'float', low: 0.0001, high: 0.1, log: true },
          layers: { type: 'int', low: 1, high: 4 },
          act: { type: 'categorical', choices: ['relu', 'tanh'] },
        },
        optimizer: { type: 'random', seed: 3 },
        max_trials: 8,
        max_parallel_jobs: 2,
        train: { command: [process.execPath, writeTrainer()] },
      });
      sweepId = sweep.sweep_id;
    }
    browser = await launchBrowser();
    ctx = await newContext(browser);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await cleanup();
    if (schema) await dropSchema(schema);
  });

  it('serves the built page at / with a policy that allows nothing from elsewhere', async () => {
    const res = await fetch(`${up.url}/`, { headers: { 'accept-encoding': 'gzip' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await res.text();
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset, html).toBeDefined();
    const js = await fetch(`${up.url}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(`${up.url}/assets/nope.js`)).status).toBe(404);
    // The API is still where it was, and still wants a token.
    expect((await fetch(`${up.url}/api/v1/runs`)).status).toBe(401);
  });

  it('logs in with a token, keeps it in sessionStorage only, and renders the overview', async () => {
    page = await login(ctx, up.url, up.adminToken);
    await page.waitForSelector('[data-view-ready="overview"]');
    expect(await page.getAttribute('[data-role]', 'data-role')).toBe('admin');
    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem('runplane.token'),
      local: localStorage.length,
      url: location.href,
    }));
    expect(stored.session).toBe(up.adminToken);
    expect(stored.local).toBe(0);
    expect(stored.url).not.toContain(up.adminToken);
    // The counts come from the store: the queued run is counted.
    await page.waitForFunction(
      () => document.querySelector('[data-count="queued"] .num')?.textContent?.trim() === '1',
    );
    await shoot(page, 'overview');
  });

  it('refuses a bad token at the login form', async () => {
    const other = await newContext(browser);
    const p = await other.newPage();
    await p.goto(up.url);
    await p.fill('input[name=token]', 'rp_not_a_real_token');
    await p.click('button[type=submit]');
    await p.waitForSelector('.error');
    expect(await textOf(p, '.error')).toContain('not valid');
    expect(await p.evaluate(() => sessionStorage.getItem('runplane.token'))).toBeNull();
    // A valid token of a role that cannot read (a worker's) is refused too, and says why.
    await p.fill('input[name=token]', (await admin.createToken('worker', 'dash-worker')).token);
    await p.click('button[type=submit]');
    await p.waitForSelector('.error >> text=role worker may not call');
    expect(await p.evaluate(() => sessionStorage.getItem('runplane.token'))).toBeNull();
    await other.close();
  });

  it("updates a run's row live from the event stream as heartbeats arrive", async () => {
    await open(page, '#/runs', 'runs');
    const row = `[data-run-id="${runId}"]`;
    await page.waitForSelector(`${row} [data-field=status] >> text=queued`);
    await page.waitForSelector('[data-testid=stream-state][data-state=live]');
    // From here on the page cannot read the list: whatever changes in the row came from the stream.
    const isList = (u: URL) => u.pathname === '/api/v1/runs';
    await page.route(isList, (route) => route.abort());

    await heartbeat(learner, runId, {
      run_id: runId,
      status: 'running',
      step: 120,
      samples_per_sec: 850.5,
      loss: 0.731,
      checkpoint_version: 1,
    });
    await page.waitForSelector(`${row} [data-field=status] >> text=running`);
    expect(await textOf(page, `${row} [data-field=step]`)).toBe('120');
    await heartbeat(learner, runId, {
      run_id: runId,
      status: 'running',
      step: 240,
      samples_per_sec: 910.25,
      loss: 0.52,
      checkpoint_version: 2,
    });
    await page.waitForFunction(
      (sel) => document.querySelector(sel)?.textContent?.trim() === '240',
      `${row} [data-field=step]`,
    );
    expect(await textOf(page, `${row} [data-field=loss]`)).toBe('0.52');
    await page.unroute(isList);
    await shoot(page, 'runs');
  });

  it('pauses a run after confirmation and shows the learner acknowledging it', async () => {
    await learner.postMetrics(runId, { step: 240, values: { reward: 181.5, entropy: 0.9 } });
    await open(page, `#/runs/${encodeURIComponent(runId)}`, 'run');
    await page.waitForSelector('[data-testid=run-status] >> text=running');
    await page.click('button[data-action=pause]');
    await page.waitForSelector('[data-testid=confirm-pause][open]');
    await page.click('[data-testid=confirm-pause] [data-testid=confirm]');
    await page.waitForSelector('[data-testid=command-trail] [data-command-type=pause]');
    const trail = '[data-testid=command-trail] [data-command-type=pause]';
    expect(await textOf(page, `${trail} [data-field=acknowledged]`)).toBe('not yet');

    // The learner's side, as a real learner does it: long-poll, then acknowledge.
    const cmd = await learner.nextCommand(runId, 10);
    expect(cmd?.type).toBe('pause');
    expect(cmd?.actor).toEqual({ type: 'operator', id: expect.any(String) });
    await learner.ackCommand(runId, cmd!.id);

    await page.waitForFunction((sel) => {
      const t = document.querySelector(sel)?.textContent?.trim();
      return t !== undefined && t !== 'not yet';
    }, `${trail} [data-field=acknowledged]`);
    await page.waitForSelector('[data-testid=run-status] >> text=paused');
    expect(await textOf(page, `${trail} [data-field=delivered]`)).not.toBe('pending');
    // The same audit trail as the CLI: the dashboard's command is in the hash chain.
    await page.waitForSelector('[data-testid=audit-table] >> text=command.pause');
    await page.waitForSelector('[data-testid=chart-loss] canvas');
    await page.waitForSelector('[data-testid=chart-reward] canvas');
    await shoot(page, 'run-detail');
  });

  it('pages through jobs with server-side cursors and filters', async () => {
    for (let i = 0; i < 53; i++)
      await admin.launchJob({ name: `batch-${i}`, command: ['true'], labels: { batch: 'b1' } });
    await open(page, '#/jobs?label=batch%3Db1&limit=50', 'jobs');
    const rows = '[data-testid=jobs-table] tbody tr[data-job-id]';
    expect(await page.locator(rows).count()).toBe(50);
    await page.click('[data-testid=next-page]');
    await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 3, rows);
    await page.click('text=Previous');
    await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 50, rows);
    await open(page, '#/jobs', 'jobs');
    await shoot(page, 'jobs');
  });

  it("shows a job's attempts and a live tail of its output", async () => {
    await open(page, `#/jobs/${encodeURIComponent(longJob)}`, 'job');
    await page.waitForSelector('[data-testid=log-tail] >> text=epoch 3 loss 0.3');
    expect(await page.locator('[data-testid=attempts] tbody tr').count()).toBeGreaterThanOrEqual(1);
    await shoot(page, 'job-detail');
  });

  it('shows the other views', async () => {
    await open(page, '#/workers', 'workers');
    await page.waitForSelector('[data-testid=workers-table] tbody tr[data-worker-id]');
    await shoot(page, 'workers');
    await open(page, '#/endpoints', 'endpoints');
    await shoot(page, 'endpoints');
    await open(page, '#/audit', 'audit');
    await page.waitForSelector('[data-testid=chain-status] >> text=hash chain intact');
    await shoot(page, 'audit');
    await open(page, '#/pods', 'pods');
    await page.waitForSelector('[data-pod-id]');
    await shoot(page, 'pods');
    await open(page, '#/pipelines', 'pipelines');
    await page.waitForSelector('[data-testid=dlq-stats]');
    // Pipelines are served by a later part of the controller: until then the view says so.
    const pipelinesServed = await served(up, '/api/v1/pipelines');
    await page.waitForSelector(
      pipelinesServed ? '[data-testid=pipelines-table]' : '[data-testid=not-available]',
    );
    if (pipelinesServed) await page.waitForSelector('[data-testid=models-table] >> text=hex8_2p');
    await shoot(page, 'pipelines');
  });

  it("opens a sweep's plots (where this server runs sweeps)", async () => {
    await open(page, '#/sweeps', 'sweeps');
    if (sweepId === null) {
      await page.waitForSelector('[data-testid=not-available]');
      return;
    }
    const id = sweepId;
    const done = await eventually(async () => {
      const sw = await admin.getSweep(id);
      return ['completed', 'failed', 'stopped'].includes(sw.status) ? sw : undefined;
    }, 120_000);
    expect(done.status, JSON.stringify(done)).toBe('completed');
    const completed = done.counts.COMPLETED ?? 0;
    expect(completed).toBeGreaterThanOrEqual(2);
    await page.waitForSelector(`[data-sweep-id="${id}"]`);
    await shoot(page, 'sweeps');
    await open(page, `#/sweeps/${encodeURIComponent(id)}`, 'sweep');
    await page.waitForSelector('[data-testid=plot-history] canvas');
    // One line per completed trial across the parameter axes, one bar per parameter, one dot per trial.
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-testid=plot-parallel] polyline').length === n,
      completed,
    );
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid=plot-importance] rect').length === 3,
    );
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-testid=plot-pareto] circle').length === n,
      completed,
    );
    expect(await page.locator('[data-testid=trials-table] tbody tr').count()).toBe(8);
    await shoot(page, 'sweep-detail');
  }, 180_000);

  it('gives a viewer no action buttons anywhere, while an admin has them', async () => {
    const adminButtons = await actionButtons(page, runId, longJob);
    expect(adminButtons).toBeGreaterThanOrEqual(6);

    const viewerCtx = await newContext(browser);
    const viewer = await login(viewerCtx, up.url, viewerToken);
    expect(await viewer.getAttribute('[data-role]', 'data-role')).toBe('viewer');
    expect(await actionButtons(viewer, runId, longJob)).toBe(0);
    await viewerCtx.close();
  });

  it('reconnects the stream after the controller restarts, resumes and reconciles', async () => {
    await open(page, '#/runs', 'runs');
    await page.waitForSelector('[data-testid=stream-state][data-state=live]');
    const { port, dataDir } = up;
    await up.stop();
    await page.waitForSelector('[data-testid=stream-state][data-state=retrying]');
    const listCalls: string[] = [];
    page.on('request', (r) => {
      if (/\/api\/v1\/runs(\?|$)/.test(r.url())) listCalls.push(r.url());
    });
    up = await startUp({
      port,
      dataDir,
      workers: 0,
      args: ['--heartbeat-min-interval', '100ms'],
      ...databaseUrl,
    });
    // Sent while the page may still be waiting to reconnect: Last-Event-ID brings it either way.
    await heartbeat(learner, runId, {
      run_id: runId,
      status: 'running',
      step: 999,
      samples_per_sec: 1000,
      loss: 0.25,
      checkpoint_version: 3,
    });
    await page.waitForSelector('[data-testid=stream-state][data-state=live]', { timeout: 30_000 });
    await page.waitForFunction(
      (sel) => document.querySelector(sel)?.textContent?.trim() === '999',
      `[data-run-id="${runId}"] [data-field=step]`,
    );
    // Level-triggered: on reconnect the page read the list again.
    expect(listCalls.length).toBeGreaterThanOrEqual(1);
  });
}

/** A trial's trainer: reports a few steps of loss and its latency through the run API, then exits. */
function writeTrainer(): string {
  const file = join(tempDir('runplane-dash-trainer-'), 'trainer.mjs');
  writeFileSync(
    file,
    `const env = process.env;
const p = JSON.parse(env.RUNPLANE_TRIAL_PARAMS);
const base = Math.abs(Math.log10(p.lr) + 2.5) + (p.act === 'relu' ? 0 : 0.3);
for (let step = 1; step <= 3; step++) {
  const res = await fetch(\`\${env.RUNPLANE_CONTROLLER_URL}/api/v1/runs/\${env.RUNPLANE_RUN_ID}/metrics\`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: \`Bearer \${env.RUNPLANE_RUN_TOKEN}\` },
    body: JSON.stringify({ step, values: { loss: base + 1 / step, latency_ms: 5 * p.layers + step } }),
  });
  if (!res.ok) { console.error(res.status, await res.text()); process.exit(3); }
}
`,
  );
  return file;
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

/**
 * Whether this server has the route: an unmatched path answers 404, or 403 "this route takes no
 * callers" when the auth hook sees it first.
 */
async function served(up: UpProcess, path: string): Promise<boolean> {
  const res = await fetch(`${up.url}${path}`, { headers: { authorization: `Bearer ${up.adminToken}` } });
  const body = (await res.json()) as { error?: { message?: string } };
  return !(
    res.status === 404 ||
    (res.status === 403 && body.error?.message === 'this route takes no callers')
  );
}

/** Action buttons on the views that have them: a run, a job, the audit log, the dead-letter queue. */
async function actionButtons(page: Page, runId: string, jobId: string): Promise<number> {
  let n = 0;
  for (const [hash, ready] of [
    [`#/runs/${encodeURIComponent(runId)}`, 'run'],
    [`#/jobs/${encodeURIComponent(jobId)}`, 'job'],
    ['#/audit', 'audit'],
    ['#/pipelines', 'pipelines'],
  ] as const) {
    await open(page, hash, ready);
    n += await page.locator('[data-action]').count();
  }
  return n;
}
