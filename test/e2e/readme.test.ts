/**
 * The README's quick start, as a new user runs it: `runplane up` with its defaults (data in
 * ./.runplane, one embedded worker) and the CLI from the same directory, without --token.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobView, WorkerView } from '../../src/jobs/schemas.js';
import { cleanup, runCli, startUp, tempDir } from '../helpers/processes.js';

afterEach(async () => {
  await cleanup();
});

describe('README quick start', { timeout: 120_000 }, () => {
  it('up with its defaults in a fresh directory; the CLI finds the admin token there', async () => {
    const cwd = tempDir('runplane-e2e-home-');
    // Only the port differs from the README (7878 may be taken): the data dir, the store and
    // the embedded worker are runplane's defaults.
    const up = await startUp({ cwd, dataDir: null, workers: null });
    expect(up.stderr()).toMatch(
      /runplane is up at http:\/\/127\.0\.0\.1:\d+ {2}\(store: sqlite:[^,]*\.runplane\/runplane\.db, workers: 1\)/,
    );

    const tokenFile = join(cwd, '.runplane', 'admin.token');
    expect(up.adminTokenPath).toBe(tokenFile);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(existsSync(join(cwd, '.runplane', 'runplane.db'))).toBe(true);

    const here = (args: string[]) => runCli(['--url', up.url, ...args], {}, { cwd });

    const workers = await here(['workers', '--json']);
    expect(workers.code, workers.stderr).toBe(0);
    const [local] = (JSON.parse(workers.stdout) as { workers: WorkerView[] }).workers;
    expect(local?.name).toMatch(/-local-1$/);
    expect(local?.health).toBe('healthy');

    const submitted = await here(['job', 'submit', '--wait', '--', 'echo', 'hi']);
    expect(submitted.code, submitted.stderr).toBe(0);
    const [id, state] = submitted.stdout.trim().split(' ');
    expect(state).toBe('SUCCEEDED');

    const logs = await here(['job', 'logs', id!]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toBe('hi\n');

    const status = await here(['job', 'status', id!, '--json']);
    expect(status.code).toBe(0);
    const job = JSON.parse(status.stdout) as JobView;
    expect(job.attempts?.map((a) => [a.worker_id, a.state, a.exit_code])).toEqual([
      [local?.worker_id, 'SUCCEEDED', 0],
    ]);

    // Elsewhere, without a token, the CLI is refused.
    const elsewhere = await runCli(['--url', up.url, 'job', 'list']);
    expect(elsewhere.code).toBe(4);

    // Ctrl-C (SIGTERM here) stops it cleanly, leaving no process behind.
    await up.stop();
    expect(up.proc.exitCode).toBe(0);
    expect(await cleanup()).toEqual([]);
  });
});
