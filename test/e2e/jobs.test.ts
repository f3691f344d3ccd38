/**
 * End to end, with real processes: `runplane up --workers 0` plus two `runplane worker`
 * processes, driven through the CLI and the HTTP API as a user would.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobView, WorkerView } from '../../src/jobs/schemas.js';
import { eventually } from '../helpers/controller.js';
import {
  type Cluster,
  cleanup,
  counts,
  listAll,
  pidAlive,
  readLines,
  sh,
  startCluster,
  tempDir,
} from '../helpers/processes.js';

afterEach(async () => {
  await cleanup();
});

const WAIT = 60_000;

function parseJson<T>(text: string): T {
  return JSON.parse(text) as T;
}

/** The pid a job wrote to `file`, once it has. */
function pidIn(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 1 ? pid : undefined;
}

/** Stops the cluster gracefully and checks that no process of it (or of its jobs) is left. */
async function expectCleanStop(cluster: Cluster): Promise<void> {
  await cluster.stop();
  expect([cluster.up, ...cluster.workers].map((p) => p.proc.exitCode)).toEqual([0, 0, 0]);
  expect(await cleanup()).toEqual([]);
}

// Generous: other suites may share this 2-core machine. Nothing here is timed.
describe('runplane up + two runplane worker processes', { timeout: 240_000 }, () => {
  it('runs 200 jobs, each exactly once, all SUCCEEDED', async () => {
    const cluster = await startCluster({ workerTimeout: '15s' });
    const { client, cli } = cluster;
    const ran = join(tempDir(), 'ran.txt');
    const ids: string[] = [];
    // Ten submitters in parallel, as a busy user would.
    await Promise.all(
      Array.from({ length: 10 }, async (_, s) => {
        for (let i = 0; i < 20; i++) {
          const { job_id } = await client.launchJob({
            name: `bulk-${s}-${i}`,
            command: sh(`echo "$RUNPLANE_JOB_ID" >> ${ran}`),
          });
          ids.push(job_id);
        }
      }),
    );
    expect(new Set(ids).size).toBe(200);

    await eventually(
      async () => (await listAll(client, { state: 'SUCCEEDED' })).length === 200 || undefined,
      120_000,
      250,
    );
    const all = await listAll(client);
    expect(all).toHaveLength(200);
    expect(all.filter((j) => j.state !== 'SUCCEEDED')).toEqual([]);

    // The CLI agrees, following next_cursor over pages of 100.
    const listed = await cli(['job', 'list', '--state', 'SUCCEEDED', '--all', '--json']);
    expect(listed.code).toBe(0);
    const { jobs } = parseJson<{ jobs: JobView[] }>(listed.stdout);
    expect(jobs).toHaveLength(200);
    expect(new Set(jobs.map((j) => j.job_id))).toEqual(new Set(ids));

    // Each job ran exactly once: one line per job id, nothing else.
    const lines = readLines(ran);
    expect(lines).toHaveLength(200);
    const seen = counts(lines);
    expect(new Set(seen.keys())).toEqual(new Set(ids));
    expect([...seen.values()].every((n) => n === 1)).toBe(true);

    // And one attempt each, which succeeded.
    for (const id of ids.slice(0, 50)) {
      const job = await client.getJob(id);
      expect(job.attempts?.map((a) => [a.state, a.exit_code])).toEqual([['SUCCEEDED', 0]]);
    }

    await expectCleanStop(cluster);
  });

  it('retries a failing job exactly max_retries_failure times, then FAILED', async () => {
    const { cli } = await startCluster({ workerTimeout: '15s' });
    const runs = join(tempDir(), 'runs.txt');
    const submitted = await cli([
      'job',
      'submit',
      '--max-retries-failure',
      '2',
      '--wait',
      '--',
      'sh',
      '-c',
      `echo run >> ${runs}; exit 3`,
    ]);
    expect(submitted.code, submitted.stderr).toBe(1);
    const [id, state] = submitted.stdout.trim().split(' ');
    expect(state).toBe('FAILED');

    const status = await cli(['job', 'status', id!, '--json']);
    expect(status.code).toBe(0);
    const job = parseJson<JobView>(status.stdout);
    expect(job.state).toBe('FAILED');
    expect(job.failure_count).toBe(3);
    expect(job.preemption_count).toBe(0);
    expect(job.attempts?.map((a) => [a.attempt_no, a.state, a.exit_code])).toEqual([
      [1, 'FAILED', 3],
      [2, 'FAILED', 3],
      [3, 'FAILED', 3],
    ]);
    // Three runs: the first and exactly two retries.
    expect(readLines(runs)).toHaveLength(3);

    // `job status --wait` on a finished failed job says so in its exit code too.
    const waited = await cli(['job', 'status', id!, '--wait']);
    expect(waited.code).toBe(1);
  });

  it('moves a job off a worker killed with SIGKILL: WORKER_FAILED, then SUCCEEDED on the other worker', async () => {
    const { client, cli, workers } = await startCluster({ workerTimeout: '3s' });
    const dir = tempDir();
    const starts = join(dir, 'starts.txt');
    const go = join(dir, 'go');
    const { job_id } = await client.launchJob({
      name: 'survivor',
      command: sh(`echo "$RUNPLANE_ATTEMPT_ID" >> ${starts}; while [ ! -e ${go} ]; do sleep 0.1; done`),
    });

    const running = await eventually(async () => {
      const j = await client.getJob(job_id);
      return j.state === 'RUNNING' && readLines(starts).length === 1 ? j : undefined;
    }, WAIT);
    const first = running.attempts?.[0];
    expect(running.attempts).toHaveLength(1);

    // Which worker runs it, by name, as `runplane workers --json` tells.
    const listed = await cli(['workers', '--json']);
    expect(listed.code).toBe(0);
    const byId = new Map(
      parseJson<{ workers: WorkerView[] }>(listed.stdout).workers.map((w) => [w.worker_id, w]),
    );
    const host = byId.get(first!.worker_id);
    expect(host?.running_attempts.map((a) => a.attempt_id)).toEqual([first!.attempt_id]);
    const victim = workers.find((w) => w.name === host?.name)!;
    const other = workers.find((w) => w !== victim)!;
    expect(victim.id).toBe(first!.worker_id);

    await victim.kill9();

    // After the worker timeout: the attempt is lost, counted as a preemption, and retried.
    const retried = await eventually(async () => {
      const j = await client.getJob(job_id);
      return j.attempts?.[0]?.state === 'WORKER_FAILED' && j.attempts.length === 2 ? j : undefined;
    }, WAIT);
    expect(retried.preemption_count).toBe(1);
    expect(retried.failure_count).toBe(0);
    expect(retried.attempts?.[1]?.worker_id).toBe(other.id);

    await eventually(
      async () => (await client.getJob(job_id)).state === 'RUNNING' && readLines(starts).length === 2,
      WAIT,
    );
    // A healthy worker keeps its job however long it runs: let the surviving worker's
    // heartbeats span two worker timeouts (3s) before the job may finish.
    const heartbeatOf = async () => {
      const w = (await client.listWorkers()).workers.find((x) => x.worker_id === other.id);
      return Date.parse(w?.last_heartbeat_at ?? '');
    };
    const since = await heartbeatOf();
    await eventually(async () => (await heartbeatOf()) - since >= 6000, WAIT, 250);
    writeFileSync(go, '');
    const done = await eventually(async () => {
      const j = await client.getJob(job_id);
      return j.state === 'SUCCEEDED' ? j : undefined;
    }, WAIT);
    expect(done.preemption_count).toBe(1);
    expect(done.attempts?.map((a) => [a.worker_id, a.state])).toEqual([
      [victim.id, 'WORKER_FAILED'],
      [other.id, 'SUCCEEDED'],
    ]);
    const attemptIds = readLines(starts);
    expect(attemptIds).toEqual(done.attempts?.map((a) => a.attempt_id));

    const health = await cli(['workers', '--json']);
    const after = new Map(
      parseJson<{ workers: WorkerView[] }>(health.stdout).workers.map((w) => [w.name, w.health]),
    );
    expect(after.get(victim.name)).toBe('unhealthy');
    expect(after.get(other.name)).toBe('healthy');
    // The killed worker's orphaned job process is swept by cleanup() (its supervisor died with it).
  });

  it('terminate: KILLED, its child job KILLED by cascade, and their processes are gone', async () => {
    const cluster = await startCluster({ workerTimeout: '15s' });
    const { client, cli } = cluster;
    const dir = tempDir();
    const parentPid = join(dir, 'parent.pid');
    const childPid = join(dir, 'child.pid');
    const parent = await cli([
      'job',
      'submit',
      '--name',
      'parent',
      '--',
      'sh',
      '-c',
      `echo $$ > ${parentPid}; exec sleep 300`,
    ]);
    expect(parent.code, parent.stderr).toBe(0);
    const parentId = parent.stdout.trim();
    // The child ignores SIGTERM: only the SIGKILL after the grace period stops it.
    const child = await cli([
      'job',
      'submit',
      '--name',
      'child',
      '--parent',
      parentId,
      '--',
      'sh',
      '-c',
      `trap '' TERM; echo $$ > ${childPid}; while true; do sleep 0.1; done`,
    ]);
    expect(child.code, child.stderr).toBe(0);
    const childId = child.stdout.trim();

    const [pPid, cPid] = await eventually(async () => {
      const [p, c] = await Promise.all([client.getJob(parentId), client.getJob(childId)]);
      const pp = pidIn(parentPid);
      const cp = pidIn(childPid);
      return p.state === 'RUNNING' && c.state === 'RUNNING' && pp && cp ? [pp, cp] : undefined;
    }, WAIT);
    expect(pidAlive(pPid)).toBe(true);
    expect(pidAlive(cPid)).toBe(true);

    const killed = await cli(['job', 'kill', parentId]);
    expect(killed.code, killed.stderr).toBe(0);
    expect(killed.stdout).toContain(parentId);

    for (const id of [parentId, childId]) {
      const job = await eventually(async () => {
        const j = await client.getJob(id);
        return j.state === 'KILLED' && j.attempts?.every((a) => a.state === 'KILLED') ? j : undefined;
      }, WAIT);
      expect(job.failure_count).toBe(0);
      expect(job.attempts).toHaveLength(1);
    }
    await eventually(() => !pidAlive(pPid) && !pidAlive(cPid), WAIT);

    const status = await cli(['job', 'status', childId, '--json']);
    expect(parseJson<JobView>(status.stdout).state).toBe('KILLED');
    // Killed jobs are not retried.
    const again = await client.getJob(parentId);
    expect(again.attempts).toHaveLength(1);

    await expectCleanStop(cluster);
  });

  it('an impossible job says at once that no worker can ever hold it, then becomes UNSCHEDULABLE', async () => {
    const { client, cli } = await startCluster({ workerTimeout: '15s' });
    const submitted = await cli([
      'job',
      'submit',
      '--cpu',
      '1000',
      '--scheduling-timeout',
      '2',
      '--',
      'true',
    ]);
    expect(submitted.code, submitted.stderr).toBe(0);
    const id = submitted.stdout.trim();

    const pending = await eventually(
      async () => {
        const j = await client.getJob(id);
        if (j.state !== 'PENDING')
          throw new Error(`job left PENDING before its reason was seen: ${j.state} ${j.reason}`);
        return j.reason ? j : undefined;
      },
      WAIT,
      20,
    );
    expect(pending.reason).toContain('no registered worker can ever hold this job');
    expect(pending.reason).toContain('cpu=1000');

    // It does not block the jobs behind it.
    const ok = await cli(['job', 'submit', '--wait', '--', 'true']);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);

    const waited = await cli(['job', 'status', id, '--wait', '--json']);
    expect(waited.code).toBe(1);
    const job = parseJson<JobView>(waited.stdout);
    expect(job.state).toBe('UNSCHEDULABLE');
    expect(job.reason).toContain('not scheduled within 2s');
    expect(job.reason).toContain('no registered worker can ever hold this job');
    expect(job.attempts ?? []).toHaveLength(0);
  });
});
