/**
 * `runplane up` killed with SIGKILL under load and restarted on the same data dir and port:
 * the workers find it again by themselves, no acknowledged job is lost and none runs twice.
 * On SQLite always, and on Postgres when it is reachable.
 */
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { ApiError } from '../../src/client/client.js';
import { eventually } from '../helpers/controller.js';
import { counts, listAll, readLines, sh, tempDir } from '../helpers/processes.js';
import { itOnEachStore, sleep, startRestartableUp } from '../helpers/restart.js';

/** Submitted upfront, all acknowledged before the crash; a trickle then goes on through it. */
const UPFRONT = 100;
/** Trickled jobs acknowledged after the restart before the trickle stops. */
const AFTER_RESTART = 10;

async function crashAndRestart(databaseUrl?: string): Promise<void> {
  // A generous worker timeout: this test is about the controller going away, not workers.
  const cluster = await startRestartableUp({
    dataDirPrefix: 'runplane-e2e-data-',
    workerTimeout: '20s',
    databaseUrl,
  });
  const { cli, client, workers } = cluster;

  const ran = join(tempDir(), 'ran.txt');
  const command = sh(`echo "$RUNPLANE_JOB_ID" >> ${ran}; sleep 0.2`);
  const acked = new Set<string>();
  let n = 0;
  const submit = async () => {
    const { job_id } = await client.launchJob({ name: `load-${n++}`, command });
    acked.add(job_id);
  };

  for (let i = 0; i < UPFRONT; i += 5) await Promise.all(Array.from({ length: 5 }, submit));
  expect(acked.size).toBe(UPFRONT);

  // Submissions keep coming while the controller dies and comes back; a refused one is simply
  // not acknowledged (and a request cut off mid-flight may or may not have been stored).
  let refused = 0;
  let restarted = false;
  let afterRestart = 0;
  const trickle = (async () => {
    while (!restarted || afterRestart < AFTER_RESTART) {
      const late = restarted;
      try {
        await submit();
        if (late) afterRestart++;
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 0) throw err;
        refused++;
      }
      await sleep(100);
    }
  })();

  // Mid-load: about 40 % done, jobs running on both workers, more arriving.
  await eventually(async () => (await listAll(client, { state: 'SUCCEEDED' })).length >= 60, 120_000, 100);
  await cluster.up.kill9();
  // Jobs running at the crash finish meanwhile; their reports must wait for the restart.
  await sleep(1000);

  await cluster.restart();
  restarted = true;
  expect(cluster.up.url).toBe(client.baseUrl);
  await trickle;
  expect(refused).toBeGreaterThan(0);
  expect(acked.size).toBeGreaterThanOrEqual(UPFRONT + AFTER_RESTART);

  // Everything stored completes: every acknowledged job, and any whose answer was cut off.
  const all = await eventually(
    async () => {
      const jobs = await listAll(client);
      return jobs.every((j) => j.state === 'SUCCEEDED') ? jobs : undefined;
    },
    180_000,
    250,
  );
  const stored = new Set(all.map((j) => j.job_id));
  expect([...acked].filter((id) => !stored.has(id))).toEqual([]);

  // Each ran exactly once; nothing ran that is not stored.
  const lines = readLines(ran);
  const seen = counts(lines);
  expect([...seen].filter(([, c]) => c !== 1)).toEqual([]);
  expect(new Set(seen.keys())).toEqual(stored);

  // The workers came back by themselves, under their old ids.
  const listed = await cli(['workers', '--json']);
  expect(listed.code).toBe(0);
  const after = (
    JSON.parse(listed.stdout) as { workers: Array<{ worker_id: string; name: string; health: string }> }
  ).workers;
  expect(after.map((w) => [w.name, w.worker_id, w.health]).sort()).toEqual(
    workers.map((w) => [w.name, w.id, 'healthy']).sort(),
  );
}

describe('runplane up killed with SIGKILL mid-load and restarted', () => {
  itOnEachStore('loses no job and runs none twice', crashAndRestart, 300_000);
});
