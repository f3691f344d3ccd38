/**
 * Jobs run end to end on the controller's embedded worker: real processes, exit codes, retries,
 * environment, working directory, setup, logs and termination.
 */
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import type { RunplaneClient } from '../../src/client/client.js';
import { eventually } from '../helpers/controller.js';
import { controllers, forEachDialect, rejected, waitForState } from './support.js';

/** Alive and not a zombie. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function stdout(client: RunplaneClient, jobId: string): Promise<string[]> {
  return (await client.jobLogs(jobId, { stream: 'stdout' })).lines.map((l) => l.line);
}

/** Waits until the job's output has a line for which `match` holds, and returns all its lines. */
async function waitForLine(
  client: RunplaneClient,
  jobId: string,
  match: (line: string) => boolean,
): Promise<string[]> {
  return eventually(async () => {
    const lines = await stdout(client, jobId);
    return lines.some(match) ? lines : undefined;
  });
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

forEachDialect((dialect) => {
  const start = controllers(dialect);
  const withWorker = () => start({ workers: 1, workerCpu: 4 });

  it('runs a job to SUCCEEDED with one attempt that exited 0, with timestamps', async () => {
    const t = await withWorker();
    const { job_id } = await t.admin.launchJob({ command: ['sh', '-c', 'echo hello'] });
    const job = await waitForState(t.admin, job_id, 'SUCCEEDED');
    const [worker] = (await t.admin.listWorkers()).workers;
    expect(job.attempts).toHaveLength(1);
    const a = job.attempts![0]!;
    expect(a).toMatchObject({
      attempt_no: 1,
      state: 'SUCCEEDED',
      exit_code: 0,
      worker_id: worker!.worker_id,
    });
    expect(job.current_attempt_id).toBe(a.attempt_id);
    expect(job.failure_count).toBe(0);
    expect(job.preemption_count).toBe(0);
    expect(job.reason).toBeNull();
    const assigned = Date.parse(a.assigned_at!);
    const started = Date.parse(a.started_at!);
    const finished = Date.parse(a.finished_at!);
    expect(assigned).toBeLessThanOrEqual(started);
    expect(started).toBeLessThanOrEqual(finished);
    expect(Date.parse(job.submitted_at!)).toBeLessThanOrEqual(Date.parse(job.started_at!));
    expect(Date.parse(job.finished_at!)).toBeGreaterThanOrEqual(Date.parse(job.started_at!));
    expect(await waitForLine(t.admin, job_id, (l) => l === 'hello')).toEqual(['hello']);
  });

  it('retries a failing job max_retries_failure times, then FAILED with every attempt recorded', async () => {
    const t = await withWorker();
    const { job_id } = await t.admin.launchJob({ command: ['sh', '-c', 'exit 3'], max_retries_failure: 2 });
    const job = await waitForState(t.admin, job_id, 'FAILED');
    expect(job.failure_count).toBe(3);
    expect(job.preemption_count).toBe(0);
    expect(job.attempts!.map((a) => [a.attempt_no, a.state, a.exit_code])).toEqual([
      [1, 'FAILED', 3],
      [2, 'FAILED', 3],
      [3, 'FAILED', 3],
    ]);
    expect(new Set(job.attempts!.map((a) => a.attempt_id)).size).toBe(3);
    expect(job.current_attempt_id).toBe(job.attempts![2]!.attempt_id);
    // A job with no retries fails on its first non-zero exit.
    const once = await t.admin.launchJob({ command: ['sh', '-c', 'exit 1'] });
    const failed = await waitForState(t.admin, once.job_id, 'FAILED');
    expect(failed.attempts!.map((a) => [a.state, a.exit_code])).toEqual([['FAILED', 1]]);
    expect(failed.failure_count).toBe(1);
  });

  it('honours env, cwd and setup, and runs the command without a shell', async () => {
    const t = await withWorker();
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'runplane-cwd-')));
    dirs.push(dir);
    const { job_id } = await t.admin.launchJob({
      command: ['sh', '-c', 'cat built.txt; echo "FOO=$FOO"; pwd; echo done > result.txt'],
      env: { FOO: 'bar baz' },
      cwd: dir,
      setup: ['sh', '-c', 'echo "built with $FOO" > built.txt'],
    });
    await waitForState(t.admin, job_id, 'SUCCEEDED');
    const lines = await waitForLine(t.admin, job_id, (l) => l === dir);
    expect(lines).toEqual(['built with bar baz', 'FOO=bar baz', dir]);
    expect(readFileSync(join(dir, 'result.txt'), 'utf8')).toBe('done\n');

    const literal = await t.admin.launchJob({ command: ['echo', '$HOME', '*', '; true'] });
    await waitForState(t.admin, literal.job_id, 'SUCCEEDED');
    expect(await waitForLine(t.admin, literal.job_id, (l) => l.length > 0)).toEqual(['$HOME * ; true']);
  });

  it('a failing setup fails the attempt and the command never runs', async () => {
    const t = await withWorker();
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'runplane-cwd-')));
    dirs.push(dir);
    const { job_id } = await t.admin.launchJob({
      command: ['touch', 'ran.txt'],
      cwd: dir,
      setup: ['sh', '-c', 'exit 4'],
    });
    const job = await waitForState(t.admin, job_id, 'FAILED');
    expect(job.attempts!.map((a) => a.state)).toEqual(['FAILED']);
    expect(existsSync(join(dir, 'ran.txt'))).toBe(false);
  });

  it('passes RUNPLANE_JOB_ID, RUNPLANE_ATTEMPT_ID, RUNPLANE_CONTROLLER_URL, RUNPLANE_RUN_ID and RUNPLANE_RUN_TOKEN to the process', async () => {
    const t = await withWorker();
    const script = [
      'echo "JOB=$RUNPLANE_JOB_ID"',
      'echo "ATTEMPT=$RUNPLANE_ATTEMPT_ID"',
      'echo "URL=$RUNPLANE_CONTROLLER_URL"',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template.
      'echo "RUN=${RUNPLANE_RUN_ID-unset}"',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template.
      'echo "TOKEN=${RUNPLANE_RUN_TOKEN:+set}"',
    ].join('; ');
    const { run_id: runId } = await t.admin.createRun({ name: 'env-check' });
    const withRun = await t.admin.launchJob({ command: ['sh', '-c', script], run_id: runId });
    const withoutRun = await t.admin.launchJob({ command: ['sh', '-c', script] });
    for (const [jobId, run, token] of [
      [withRun.job_id, runId, 'set'],
      [withoutRun.job_id, 'unset', ''],
    ] as const) {
      const job = await waitForState(t.admin, jobId, 'SUCCEEDED');
      const lines = await waitForLine(t.admin, jobId, (l) => l.startsWith('TOKEN='));
      expect(lines).toEqual([
        `JOB=${jobId}`,
        `ATTEMPT=${job.attempts![0]!.attempt_id}`,
        `URL=${t.ctl.url}`,
        `RUN=${run}`,
        `TOKEN=${token}`,
      ]);
    }
  });

  it('serves logs per stream and per attempt, and tails the last lines', async () => {
    const t = await withWorker();
    const { job_id } = await t.admin.launchJob({
      command: ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do echo "line $i"; done; echo oops >&2'],
    });
    await waitForState(t.admin, job_id, 'SUCCEEDED');
    const all = await waitForLine(t.admin, job_id, (l) => l === 'line 10');
    expect(all).toEqual(Array.from({ length: 10 }, (_, i) => `line ${i + 1}`));
    const tail = await t.admin.jobLogs(job_id, { tail: 3, stream: 'stdout' });
    expect(tail.lines).toEqual([
      { stream: 'stdout', line: 'line 8' },
      { stream: 'stdout', line: 'line 9' },
      { stream: 'stdout', line: 'line 10' },
    ]);
    const err = await eventually(async () => {
      const r = await t.admin.jobLogs(job_id, { stream: 'stderr' });
      return r.lines.length > 0 ? r : undefined;
    });
    expect(err.lines).toEqual([{ stream: 'stderr', line: 'oops' }]);
    const job = await t.admin.getJob(job_id);
    expect((await t.admin.jobLogs(job_id, { attempt: 1 })).attempt_id).toBe(job.attempts![0]!.attempt_id);
    const missing = await rejected(t.admin.jobLogs(job_id, { attempt: 2 }));
    expect(missing.status).toBe(404);
    expect(missing.code).toBe('ATTEMPT_NOT_FOUND');
  });

  it('terminating a running job makes it KILLED, ends its attempt KILLED and stops the process', async () => {
    const t = await withWorker();
    const { job_id } = await t.admin.launchJob({ command: ['sh', '-c', 'echo "pid=$$"; exec sleep 60'] });
    await waitForState(t.admin, job_id, 'RUNNING');
    const lines = await waitForLine(t.admin, job_id, (l) => l.startsWith('pid='));
    const pid = Number(lines[0]!.slice(4));
    expect(isAlive(pid)).toBe(true);

    const killed = await t.admin.terminateJob(job_id);
    expect(killed.state).toBe('KILLED');
    expect(killed.finished_at).not.toBeNull();
    const job = await eventually(async () => {
      const j = await t.admin.getJob(job_id);
      return j.attempts?.[0]?.state === 'KILLED' ? j : undefined;
    });
    expect(job.state).toBe('KILLED');
    expect(job.attempts).toHaveLength(1);
    expect(job.attempts![0]!.finished_at).not.toBeNull();
    await eventually(() => !isAlive(pid));
    // The worker's capacity is free again.
    const [worker] = (await t.admin.listWorkers()).workers;
    expect(worker!.running_attempts).toEqual([]);
    expect(worker!.used.cpu).toBe(0);
  });

  it('terminate cascades to child jobs, running or pending', async () => {
    const t = await withWorker();
    const parent = await t.admin.launchJob({ name: 'parent', command: ['sleep', '60'] });
    const child = await t.admin.launchJob({
      name: 'child',
      command: ['sleep', '60'],
      parent_job_id: parent.job_id,
    });
    // Too big for the worker: stays PENDING under the child.
    const grandchild = await t.admin.launchJob({
      name: 'grandchild',
      command: ['sleep', '60'],
      parent_job_id: child.job_id,
      resources: { cpu: 64 },
    });
    const bystander = await t.admin.launchJob({ name: 'bystander', command: ['sleep', '60'] });
    await waitForState(t.admin, parent.job_id, 'RUNNING');
    await waitForState(t.admin, child.job_id, 'RUNNING');
    await waitForState(t.admin, bystander.job_id, 'RUNNING');

    await t.admin.terminateJob(parent.job_id);
    for (const id of [parent.job_id, child.job_id, grandchild.job_id])
      expect((await t.admin.getJob(id)).state).toBe('KILLED');
    for (const id of [parent.job_id, child.job_id]) {
      await eventually(async () => (await t.admin.getJob(id)).attempts?.[0]?.state === 'KILLED');
    }
    expect((await t.admin.getJob(grandchild.job_id)).attempts).toEqual([]);
    expect((await t.admin.getJob(bystander.job_id)).state).toBe('RUNNING');
  });

  it('terminating a PENDING job makes it KILLED at once, with no attempt', async () => {
    const t = await start({ workers: 0 });
    const { job_id } = await t.admin.launchJob({ command: ['true'] });
    const killed = await t.admin.terminateJob(job_id, 'changed my mind');
    expect(killed.state).toBe('KILLED');
    expect(killed.reason).toContain('changed my mind');
    expect(killed.finished_at).not.toBeNull();
    expect(killed.attempts).toEqual([]);
    expect((await t.admin.getJob(job_id)).state).toBe('KILLED');
  });

  it('terminating a finished job leaves its outcome alone', async () => {
    const t = await withWorker();
    const { job_id } = await t.admin.launchJob({ command: ['true'] });
    const done = await waitForState(t.admin, job_id, 'SUCCEEDED');
    await t.admin.terminateJob(job_id).catch(() => undefined);
    const after = await t.admin.getJob(job_id);
    expect(after.state).toBe('SUCCEEDED');
    expect(after.finished_at).toBe(done.finished_at);
    expect(after.attempts).toEqual(done.attempts);
  });
});
