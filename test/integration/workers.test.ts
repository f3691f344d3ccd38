/**
 * Workers as the controller sees them: capacity accounting in ListWorkers, liveness (a silent
 * worker's attempts become WORKER_FAILED and retry as preemptions), re-registration, stale
 * reports, and kills handed out through the poll.
 */
import { expect, it } from 'vitest';
import { eventually } from '../helpers/controller.js';
import { controllers, forEachDialect, ManualWorker, schedulingPass, waitForState } from './support.js';

forEachDialect((dialect) => {
  const start = controllers(dialect);

  it('ListWorkers shows capacity, what is used and free, and the attempts running there', async () => {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 4, memory_mb: 8000, gpu: 2 });
    const { job_id } = await t.admin.launchJob({
      command: ['true'],
      resources: { cpu: 1.5, memory_mb: 1000, gpu: 1 },
    });
    const [a] = await w.assignments(1);
    const viewer = await t.as('viewer');

    let [view] = (await viewer.listWorkers()).workers;
    expect(view).toMatchObject({
      worker_id: w.id,
      name: 'w',
      health: 'healthy',
      capacity: { cpu: 4, memory_mb: 8000, gpu: 2 },
      used: { cpu: 1.5, memory_mb: 1000, gpu: 1 },
      free: { cpu: 2.5, memory_mb: 7000, gpu: 1 },
      running_attempts: [{ attempt_id: a!.attempt_id, job_id, state: 'BUILDING' }],
    });
    await w.report(a!.attempt_id, 'RUNNING');
    [view] = (await viewer.listWorkers()).workers;
    expect(view!.running_attempts).toEqual([{ attempt_id: a!.attempt_id, job_id, state: 'RUNNING' }]);

    await w.report(a!.attempt_id, 'SUCCEEDED', 0);
    [view] = (await viewer.listWorkers()).workers;
    expect(view!.used).toEqual({ cpu: 0, memory_mb: 0, gpu: 0 });
    expect(view!.free).toEqual({ cpu: 4, memory_mb: 8000, gpu: 2 });
    expect(view!.running_attempts).toEqual([]);
    expect((await t.admin.getJob(job_id)).state).toBe('SUCCEEDED');
  });

  it('a worker that stops heartbeating becomes unhealthy; its attempt is WORKER_FAILED and the job is retried elsewhere', async () => {
    const t = await start({ workers: 0, workerTimeoutMs: '1s' });
    const silent = await ManualWorker.register(t, 'silent', { cpu: 4 });
    const retried = await t.admin.launchJob({ command: ['sleep', '60'] });
    const noRetry = await t.admin.launchJob({ command: ['sleep', '60'], max_retries_preemption: 0 });
    const assigned = await silent.assignments(2);
    const running = assigned.find((a) => a.job_id === retried.job_id)!;
    await silent.report(running.attempt_id, 'RUNNING');
    // From here on the worker says nothing.

    await eventually(async () => (await t.admin.listWorkers()).workers[0]?.health === 'unhealthy');
    let job = await waitForState(t.admin, retried.job_id, 'PENDING');
    expect(job.preemption_count).toBe(1);
    expect(job.failure_count).toBe(0);
    expect(job.attempts!.map((a) => [a.attempt_id, a.state])).toEqual([
      [running.attempt_id, 'WORKER_FAILED'],
    ]);
    expect(job.attempts![0]!.reason).toContain('no heartbeat');
    const lost = await waitForState(t.admin, noRetry.job_id, 'WORKER_FAILED');
    expect(lost.preemption_count).toBe(1);
    expect(lost.attempts!.map((a) => a.state)).toEqual(['WORKER_FAILED']);

    // An unhealthy worker gets nothing, though it has room.
    await schedulingPass(t);
    expect((await t.admin.getJob(retried.job_id)).state).toBe('PENDING');

    const other = await ManualWorker.register(t, 'other', { cpu: 4 });
    await other.assignments(1);
    job = await t.admin.getJob(retried.job_id);
    expect(job.state).toBe('BUILDING');
    expect(job.attempts!.map((a) => [a.attempt_no, a.worker_id, a.state])).toEqual([
      [1, silent.id, 'WORKER_FAILED'],
      [2, other.id, 'BUILDING'],
    ]);
    const [, otherView] = (await t.admin.listWorkers()).workers;
    expect(otherView!.running_attempts.map((a) => a.job_id)).toEqual([retried.job_id]);

    // A heartbeat brings the silent worker back.
    await silent.heartbeat();
    expect((await t.admin.listWorkers()).workers.find((x) => x.worker_id === silent.id)?.health).toBe(
      'healthy',
    );
  });

  it('re-registering under the same name fails the attempts the worker no longer runs', async () => {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 4 });
    const kept = await t.admin.launchJob({ name: 'kept', command: ['sleep', '60'] });
    const lost = await t.admin.launchJob({ name: 'lost', command: ['sleep', '60'] });
    const assigned = await w.assignments(2);
    const keptAttempt = assigned.find((a) => a.job_id === kept.job_id)!.attempt_id;
    const lostAttempt = assigned.find((a) => a.job_id === lost.job_id)!.attempt_id;
    await w.report(keptAttempt, 'RUNNING');
    await w.report(lostAttempt, 'RUNNING');

    const again = await w.client.registerWorker({
      name: 'w',
      capacity: { cpu: 4, memory_mb: 100_000 },
      running: [keptAttempt],
    });
    expect(again.worker_id).toBe(w.id);
    const keptJob = await t.admin.getJob(kept.job_id);
    expect(keptJob.state).toBe('RUNNING');
    expect(keptJob.attempts!.map((a) => a.state)).toEqual(['RUNNING']);
    const lostJob = await t.admin.getJob(lost.job_id);
    expect(lostJob.attempts![0]!.state).toBe('WORKER_FAILED');
    expect(lostJob.preemption_count).toBe(1);
    // Retried as a preemption, on the same (healthy again) worker.
    const retried = await waitForState(t.admin, lost.job_id, 'BUILDING');
    expect(retried.attempts!.map((a) => [a.attempt_no, a.state, a.worker_id])).toEqual([
      [1, 'WORKER_FAILED', w.id],
      [2, 'BUILDING', w.id],
    ]);

    // A restart with nothing running loses everything that was active.
    await w.client.registerWorker({ name: 'w', capacity: { cpu: 4, memory_mb: 100_000 }, running: [] });
    expect((await t.admin.getJob(kept.job_id)).attempts![0]!.state).toBe('WORKER_FAILED');
    expect((await t.admin.getJob(lost.job_id)).attempts![1]!.state).toBe('WORKER_FAILED');
    const keptAgain = await eventually(async () => {
      const j = await t.admin.getJob(kept.job_id);
      return j.attempts?.length === 2 ? j : undefined;
    });
    expect(keptAgain.attempts!.map((a) => a.state)).toEqual(['WORKER_FAILED', 'BUILDING']);
    const lostAgain = await eventually(async () => {
      const j = await t.admin.getJob(lost.job_id);
      return j.attempts?.length === 3 ? j : undefined;
    });
    expect(lostAgain.attempts!.map((a) => a.state)).toEqual(['WORKER_FAILED', 'WORKER_FAILED', 'BUILDING']);
    expect(lostAgain.preemption_count).toBe(2);
    expect((await t.admin.listWorkers()).workers).toHaveLength(1);
  });

  it('ignores a report about a superseded attempt', async () => {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 4 });
    const { job_id } = await t.admin.launchJob({ command: ['sleep', '60'], max_retries_failure: 3 });
    const [first] = await w.assignments(1);
    await w.report(first!.attempt_id, 'RUNNING');
    await w.client.registerWorker({ name: 'w', capacity: { cpu: 4, memory_mb: 100_000 }, running: [] });
    const before = await waitForState(t.admin, job_id, 'BUILDING');
    expect(before.attempts).toHaveLength(2);

    // The old process's exit arrives late: it must neither end the job nor count as a failure.
    const late = await w.report(first!.attempt_id, 'FAILED', 9);
    expect(late).toEqual({ applied: 0, ignored: 1 });
    const lateSuccess = await w.report(first!.attempt_id, 'SUCCEEDED', 0);
    expect(lateSuccess).toEqual({ applied: 0, ignored: 1 });
    const after = await t.admin.getJob(job_id);
    expect(after.state).toBe('BUILDING');
    expect(after.failure_count).toBe(0);
    expect(after.attempts).toEqual(before.attempts);
    expect(after.current_attempt_id).toBe(before.attempts![1]!.attempt_id);

    // Reports about unknown attempts, or another worker's, are ignored too.
    const other = await ManualWorker.register(t, 'other', { cpu: 1 });
    const current = before.attempts![1]!.attempt_id;
    expect(await other.report(current, 'SUCCEEDED', 0)).toEqual({ applied: 0, ignored: 1 });
    expect(await w.report('job_unknown-1', 'SUCCEEDED', 0)).toEqual({ applied: 0, ignored: 1 });
    expect((await t.admin.getJob(job_id)).state).toBe('BUILDING');

    // The current attempt's own report is applied.
    expect(await w.report(current, 'RUNNING')).toEqual({ applied: 1, ignored: 0 });
    expect((await t.admin.getJob(job_id)).state).toBe('RUNNING');
  });

  it('applies one report batch of mixed updates as the same updates one by one would', async () => {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 8 });
    const ok = await Promise.all([0, 1, 2].map(() => t.admin.launchJob({ command: ['true'] })));
    const failing = await t.admin.launchJob({ command: ['false'], max_retries_failure: 1 });
    const quick = await t.admin.launchJob({ command: ['true'] });
    const got = await w.assignments(5);
    const of = (jobId: string) => got.find((a) => a.job_id === jobId)!.attempt_id;
    // The first job's endpoint must go when it ends.
    await w.report(of(ok[0]!.job_id), 'RUNNING');
    await t.admin.registerEndpoint({ name: 'ep-batch', address: 'h:1', job_id: ok[0]!.job_id });

    const r = await w.client.report(w.id, {
      updates: [
        { attempt_id: of(ok[1]!.job_id), state: 'RUNNING' },
        { attempt_id: of(ok[2]!.job_id), state: 'RUNNING' },
        { attempt_id: of(failing.job_id), state: 'RUNNING' },
        { attempt_id: of(ok[0]!.job_id), state: 'SUCCEEDED', exit_code: 0 },
        { attempt_id: of(ok[1]!.job_id), state: 'SUCCEEDED', exit_code: 0, reason: 'done' },
        { attempt_id: of(failing.job_id), state: 'FAILED', exit_code: 3 },
        // The short job: RUNNING and its exit together; then a repeated exit, ignored.
        { attempt_id: of(quick.job_id), state: 'RUNNING' },
        { attempt_id: of(quick.job_id), state: 'SUCCEEDED', exit_code: 0 },
        { attempt_id: of(quick.job_id), state: 'SUCCEEDED', exit_code: 0 },
        { attempt_id: 'job_unknown-1', state: 'SUCCEEDED', exit_code: 0 },
      ],
    });
    expect(r).toEqual({ applied: 8, ignored: 2 });

    const jobs = await Promise.all([...ok, failing, quick].map((j) => t.admin.getJob(j.job_id)));
    // The failed job is retried (PENDING, or already placed again).
    expect(jobs.map((j) => j.state)).toEqual([
      'SUCCEEDED',
      'SUCCEEDED',
      'RUNNING',
      expect.stringMatching(/^(PENDING|BUILDING)$/),
      'SUCCEEDED',
    ]);
    expect(jobs[1]!.attempts?.[0]).toMatchObject({ state: 'SUCCEEDED', exit_code: 0 });
    expect(jobs[3]).toMatchObject({ failure_count: 1 });
    expect(jobs[3]!.attempts?.[0]).toMatchObject({ state: 'FAILED', exit_code: 3 });
    expect((await t.admin.findEndpoints({ name: 'ep-batch' })).endpoints).toEqual([]);

    // Every change wrote its events, in order for each job.
    const events = await t.ctl.store.db
      .selectFrom('events')
      .select(['type', 'entity_id', 'payload'])
      .where('type', 'in', ['job.state_changed', 'attempt.state_changed', 'endpoint.removed'])
      .orderBy('seq')
      .execute();
    const trail = (jobId: string, type: string) =>
      events
        .filter((e) => e.type === type && (JSON.parse(e.payload) as { job_id: string }).job_id === jobId)
        .map((e) => (JSON.parse(e.payload) as { state: string }).state);
    expect(trail(quick.job_id, 'job.state_changed')).toEqual(['BUILDING', 'RUNNING', 'SUCCEEDED']);
    expect(trail(quick.job_id, 'attempt.state_changed')).toEqual(['RUNNING', 'SUCCEEDED']);
    expect(trail(ok[1]!.job_id, 'job.state_changed')).toEqual(['BUILDING', 'RUNNING', 'SUCCEEDED']);
    expect(trail(failing.job_id, 'job.state_changed').slice(0, 3)).toEqual([
      'BUILDING',
      'RUNNING',
      'PENDING',
    ]);
    expect(events.filter((e) => e.type === 'endpoint.removed').map((e) => e.entity_id)).toHaveLength(1);
  });

  it('the poll hands out a kill for an attempt whose job was terminated', async () => {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 4 });
    const { job_id } = await t.admin.launchJob({ command: ['sleep', '60'] });
    const [a] = await w.assignments(1);
    await w.report(a!.attempt_id, 'RUNNING');
    expect(await w.poll([a!.attempt_id])).toEqual({ assignments: [], kill: [] });

    await t.admin.terminateJob(job_id);
    const { kill, assignments } = await w.poll([a!.attempt_id]);
    expect(assignments).toEqual([]);
    expect(kill).toEqual([{ attempt_id: a!.attempt_id, reason: expect.stringContaining('KILLED') }]);
    // The attempt stays active until the worker confirms the process is gone.
    expect((await t.admin.getJob(job_id)).attempts![0]!.state).toBe('RUNNING');
    await w.report(a!.attempt_id, 'KILLED');
    const job = await t.admin.getJob(job_id);
    expect(job.state).toBe('KILLED');
    expect(job.attempts!.map((x) => x.state)).toEqual(['KILLED']);
    expect((await t.admin.listWorkers()).workers[0]!.running_attempts).toEqual([]);
  });

  it('an attempt killed before its worker picked it up is closed by the poll and never handed out', async () => {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 4 });
    const { job_id } = await t.admin.launchJob({ command: ['sleep', '60'] });
    await waitForState(t.admin, job_id, 'BUILDING');
    await t.admin.terminateJob(job_id);
    expect(await w.poll()).toEqual({ assignments: [], kill: [] });
    const job = await t.admin.getJob(job_id);
    expect(job.state).toBe('KILLED');
    expect(job.attempts!.map((a) => a.state)).toEqual(['KILLED']);
  });

  it('a deregistered worker goes offline and its attempts are retried as preemptions', async () => {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 4 });
    const { job_id } = await t.admin.launchJob({ command: ['sleep', '60'] });
    const [a] = await w.assignments(1);
    await w.report(a!.attempt_id, 'RUNNING');
    await w.client.deregisterWorker(w.id);
    expect((await t.admin.listWorkers()).workers[0]!.health).toBe('offline');
    const job = await waitForState(t.admin, job_id, 'PENDING');
    expect(job.preemption_count).toBe(1);
    expect(job.attempts!.map((x) => x.state)).toEqual(['WORKER_FAILED']);
  });
});
