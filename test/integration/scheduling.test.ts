/**
 * Placement over the real store, with workers driven by hand over the agent protocol so the test
 * decides when capacity is taken and given back: FIFO first-fit, skipping what does not fit,
 * UNSCHEDULABLE after the scheduling timeout, and gangs.
 */
import { expect, it } from 'vitest';
import type { TestController } from '../helpers/controller.js';
import { controllers, forEachDialect, ManualWorker, schedulingPass, waitForState } from './support.js';

const NEVER_FITS = 'no registered worker can ever hold this job';

/** The worker each job's latest attempt went to, or null while it has none. */
async function placement(t: TestController, ids: string[]): Promise<Array<string | null>> {
  return Promise.all(ids.map(async (id) => (await t.admin.getJob(id)).attempts?.at(-1)?.worker_id ?? null));
}

forEachDialect((dialect) => {
  const start = controllers(dialect);

  it('a pass with no pending job begins no write (and takes no outbox lock); one with a pending job places it', async () => {
    const t = await start({ workers: 0 });
    await ManualWorker.register(t, 'idle', { cpu: 1 });
    // Passes run by hand from here; count the writes they begin.
    await t.ctl.scheduler.stop();
    const store = t.ctl.store;
    const write = store.write.bind(store);
    let passWrites = 0;
    store.write = ((fn) => {
      if (new Error().stack?.includes('SchedulerLoop.pass')) passWrites += 1;
      return write(fn);
    }) as typeof store.write;
    try {
      expect(await t.ctl.scheduler.pass()).toMatchObject({ pending: 0, placed: 0 });
      expect(passWrites).toBe(0);
      await t.admin.launchJob({ command: ['true'] });
      expect(await t.ctl.scheduler.pass()).toMatchObject({ pending: 1, placed: 1 });
      expect(passWrites).toBe(1);
    } finally {
      store.write = write;
    }
  });

  it('keeps jobs PENDING until a worker with enough capacity registers through the API', async () => {
    const t = await start({ workers: 0 });
    const { job_id } = await t.admin.launchJob({ command: ['true'], resources: { cpu: 2 } });
    await schedulingPass(t);
    let job = await t.admin.getJob(job_id);
    expect(job.state).toBe('PENDING');
    expect(job.attempts).toEqual([]);
    expect(job.reason).toContain('no worker is registered');

    const small = await ManualWorker.register(t, 'small', { cpu: 1 });
    await schedulingPass(t);
    job = await t.admin.getJob(job_id);
    expect(job.state).toBe('PENDING');
    expect(job.reason).toContain(NEVER_FITS);
    expect(job.reason).toContain('cpu=1');
    expect((await small.poll()).assignments).toEqual([]);

    const big = await ManualWorker.register(t, 'big', { cpu: 2 });
    const [assignment] = await big.assignments(1);
    expect(assignment).toMatchObject({ job_id, command: ['true'], cwd: null, setup: null, run_id: null });
    job = await t.admin.getJob(job_id);
    expect(job.state).toBe('BUILDING');
    expect(job.reason).toBeNull();
    expect(job.attempts?.map((a) => [a.attempt_id, a.worker_id, a.state])).toEqual([
      [assignment!.attempt_id, big.id, 'BUILDING'],
    ]);
  });

  it('places each job, in submission order, on the first worker with room left', async () => {
    const t = await start({ workers: 0 });
    const w1 = await ManualWorker.register(t, 'w1', { cpu: 2 });
    const w2 = await ManualWorker.register(t, 'w2', { cpu: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await t.admin.launchJob({ name: `j${i}`, command: ['true'] })).job_id);
    await schedulingPass(t);
    expect(await placement(t, ids)).toEqual([w1.id, w1.id, w2.id, w2.id, null]);
    expect((await t.admin.getJob(ids[4]!)).state).toBe('PENDING');
    expect((await w1.assignments(2)).map((a) => a.job_id).sort()).toEqual([ids[0], ids[1]].sort());

    // Capacity given back is used by the next job in line.
    const first = (await t.admin.getJob(ids[0]!)).attempts![0]!.attempt_id;
    await w1.report(first, 'RUNNING');
    await w1.report(first, 'SUCCEEDED', 0);
    await waitForState(t.admin, ids[4]!, 'BUILDING');
    expect(await placement(t, [ids[4]!])).toEqual([w1.id]);
  });

  it('skips a job that does not fit, so it never blocks the smaller jobs behind it', async () => {
    const t = await start({ workers: 0 });
    const big = await t.admin.launchJob({ name: 'big', command: ['true'], resources: { cpu: 3 } });
    const blocked = await t.admin.launchJob({ name: 'blocked', command: ['true'], resources: { cpu: 2 } });
    const small = await t.admin.launchJob({ name: 'small', command: ['true'], resources: { cpu: 1 } });
    const w = await ManualWorker.register(t, 'w', { cpu: 4 });
    const assigned = await w.assignments(2);
    expect(assigned.map((a) => a.job_id).sort()).toEqual([big.job_id, small.job_id].sort());
    await schedulingPass(t);
    const waiting = await t.admin.getJob(blocked.job_id);
    expect(waiting.state).toBe('PENDING');
    // It fits an idle worker, so it is not called impossible.
    expect(waiting.reason ?? '').not.toContain(NEVER_FITS);

    const bigAttempt = assigned.find((a) => a.job_id === big.job_id)!.attempt_id;
    await w.report(bigAttempt, 'RUNNING');
    await w.report(bigAttempt, 'FAILED', 1);
    await waitForState(t.admin, blocked.job_id, 'BUILDING');
    expect(await placement(t, [blocked.job_id])).toEqual([w.id]);
  });

  it('reads past a page of jobs that do not fit to the ones that do, in one pass', async () => {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 2 });
    // More waiting jobs than the pass's first page (sized to the free capacity) holds: every
    // one of them too big for the worker's free cpu right now, then two that fit.
    const busy = await t.admin.launchJob({ name: 'busy', command: ['true'], resources: { cpu: 1 } });
    const [first] = await w.assignments(1);
    expect(first?.job_id).toBe(busy.job_id);
    await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        t.admin.launchJob({ name: `wide-${i}`, command: ['true'], resources: { cpu: 2 } }),
      ),
    );
    const small = await t.admin.launchJob({ name: 'small', command: ['true'], resources: { cpu: 1 } });
    const after = await t.admin.launchJob({ name: 'after', command: ['true'], resources: { cpu: 1 } });
    await schedulingPass(t);
    expect((await t.admin.getJob(small.job_id)).state).toBe('BUILDING');
    // FIFO among the jobs that fit: the earlier small job got the last free cpu.
    expect((await t.admin.getJob(after.job_id)).state).toBe('PENDING');
    expect((await t.admin.listJobs({ state: 'BUILDING' })).jobs.map((j) => j.name).sort()).toEqual([
      'busy',
      'small',
    ]);
  });

  it('places a job only on a worker of its device type, with enough memory and gpus', async () => {
    const t = await start({ workers: 0 });
    const cpuOnly = await ManualWorker.register(t, 'cpu-only', { cpu: 8, memory_mb: 64_000 });
    const c = await t.as('worker');
    const r = await c.registerWorker({
      name: 'gpu-box',
      capacity: { cpu: 8, memory_mb: 1000, gpu: 2 },
      device_type: 'a100',
    });
    const gpuJob = await t.admin.launchJob({ command: ['true'], resources: { gpu: 1, device_type: 'a100' } });
    const memJob = await t.admin.launchJob({ command: ['true'], resources: { memory_mb: 2000 } });
    const h100 = await t.admin.launchJob({
      command: ['true'],
      resources: { device_type: 'h100' },
      scheduling_timeout_s: 60,
    });
    await schedulingPass(t);
    expect(await placement(t, [gpuJob.job_id, memJob.job_id, h100.job_id])).toEqual([
      r.worker_id,
      cpuOnly.id,
      null,
    ]);
    const impossible = await t.admin.getJob(h100.job_id);
    expect(impossible.state).toBe('PENDING');
    expect(impossible.reason).toContain(NEVER_FITS);
  });

  it('says at once why an impossible job waits, and makes it UNSCHEDULABLE after its timeout', async () => {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 4, memory_mb: 1000 });
    const { job_id } = await t.admin.launchJob({
      command: ['true'],
      resources: { cpu: 1000 },
      scheduling_timeout_s: 1,
    });
    await schedulingPass(t);
    const pending = await t.admin.getJob(job_id);
    expect(pending.state).toBe('PENDING');
    expect(pending.reason).toContain(NEVER_FITS);
    expect(pending.reason).toContain('cpu=1000');
    expect(pending.reason).toContain('cpu=4');

    const job = await waitForState(t.admin, job_id, 'UNSCHEDULABLE');
    expect(job.reason).toContain('not scheduled within 1s');
    expect(job.reason).toContain(NEVER_FITS);
    expect(job.attempts).toEqual([]);
    expect(job.finished_at).not.toBeNull();
    expect((await w.poll()).assignments).toEqual([]);
  });

  it('makes a job UNSCHEDULABLE when capacity stays busy past its timeout, without calling it impossible', async () => {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 1 });
    const busy = await t.admin.launchJob({ command: ['sleep', '60'] });
    await w.assignments(1);
    const waiting = await t.admin.launchJob({ command: ['true'], scheduling_timeout_s: 1 });
    const job = await waitForState(t.admin, waiting.job_id, 'UNSCHEDULABLE');
    expect(job.reason).toContain('not scheduled within 1s');
    expect(job.reason).not.toContain(NEVER_FITS);
    expect((await t.admin.getJob(busy.job_id)).state).toBe('BUILDING');
  });

  it('places a gang only once all its members are submitted, then all of them in one pass', async () => {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 4 });
    const m1 = await t.admin.launchJob({ name: 'm1', command: ['true'], gang: { id: 'g', size: 2 } });
    await schedulingPass(t);
    expect((await t.admin.getJob(m1.job_id)).state).toBe('PENDING');
    expect((await w.poll()).assignments).toEqual([]);

    const m2 = await t.admin.launchJob({ name: 'm2', command: ['true'], gang: { id: 'g', size: 2 } });
    const assigned = await w.assignments(2);
    expect(assigned.map((a) => a.job_id).sort()).toEqual([m1.job_id, m2.job_id].sort());
    const [j1, j2] = [await t.admin.getJob(m1.job_id), await t.admin.getJob(m2.job_id)];
    expect([j1.state, j2.state]).toEqual(['BUILDING', 'BUILDING']);
    expect(j1.gang).toEqual({ id: 'g', size: 2 });
    // Placed by the same pass: the same placement time.
    expect(j1.attempts![0]!.assigned_at).toBe(j2.attempts![0]!.assigned_at);
  });

  it('places a gang all or nothing: when not every member fits, none is placed and smaller jobs go ahead', async () => {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 4 });
    const g1 = await t.admin.launchJob({
      command: ['true'],
      resources: { cpu: 3 },
      gang: { id: 'wide', size: 2 },
    });
    const g2 = await t.admin.launchJob({
      command: ['true'],
      resources: { cpu: 3 },
      gang: { id: 'wide', size: 2 },
    });
    const after = await t.admin.launchJob({ command: ['true'], resources: { cpu: 2 } });
    const [a] = await w.assignments(1);
    expect(a!.job_id).toBe(after.job_id);
    await schedulingPass(t);
    expect((await t.admin.getJob(g1.job_id)).state).toBe('PENDING');
    expect((await t.admin.getJob(g2.job_id)).state).toBe('PENDING');
    expect((await w.poll([a!.attempt_id])).assignments).toEqual([]);
  });

  it('kills the other gang members when one fails past its retries', async () => {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 4 });
    const m1 = await t.admin.launchJob({ command: ['false'], gang: { id: 'g', size: 2 } });
    const m2 = await t.admin.launchJob({ command: ['sleep', '60'], gang: { id: 'g', size: 2 } });
    const assigned = await w.assignments(2);
    const a1 = assigned.find((a) => a.job_id === m1.job_id)!.attempt_id;
    const a2 = assigned.find((a) => a.job_id === m2.job_id)!.attempt_id;
    await w.report(a1, 'RUNNING');
    await w.report(a2, 'RUNNING');
    await w.report(a1, 'FAILED', 1);

    expect((await t.admin.getJob(m1.job_id)).state).toBe('FAILED');
    const killed = await t.admin.getJob(m2.job_id);
    expect(killed.state).toBe('KILLED');
    expect(killed.reason).toContain(m1.job_id);
    const { kill } = await w.poll([a2]);
    expect(kill.map((k) => k.attempt_id)).toEqual([a2]);
    await w.report(a2, 'KILLED');
    expect((await t.admin.getJob(m2.job_id)).attempts!.map((a) => a.state)).toEqual(['KILLED']);
  });

  it('retries a failed gang member within its budget without touching the others', async () => {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 4 });
    const m1 = await t.admin.launchJob({
      command: ['true'],
      gang: { id: 'g', size: 2 },
      max_retries_failure: 1,
    });
    const m2 = await t.admin.launchJob({ command: ['true'], gang: { id: 'g', size: 2 } });
    const assigned = await w.assignments(2);
    const a1 = assigned.find((a) => a.job_id === m1.job_id)!.attempt_id;
    const a2 = assigned.find((a) => a.job_id === m2.job_id)!.attempt_id;
    await w.report(a2, 'RUNNING');
    await w.report(a1, 'FAILED', 1);
    const retried = await waitForState(t.admin, m1.job_id, 'BUILDING');
    expect(retried.attempts!.map((a) => a.state)).toEqual(['FAILED', 'BUILDING']);
    expect(retried.failure_count).toBe(1);
    expect((await t.admin.getJob(m2.job_id)).state).toBe('RUNNING');
  });
});
