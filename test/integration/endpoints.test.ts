/**
 * The endpoint registry: jobs register named addresses while they start or run; lookups by name
 * and by prefix only ever show endpoints of RUNNING jobs; a job's endpoints go when it ends.
 */
import { expect, it } from 'vitest';
import type { RunplaneClient } from '../../src/client/client.js';
import type { TestController } from '../helpers/controller.js';
import { controllers, forEachDialect, ManualWorker, rejected, storeCounts } from './support.js';

interface Started {
  job_id: string;
  attempt_id: string;
}

/** Submits a job and drives it to BUILDING (placed) or RUNNING over the agent protocol. */
async function startJob(
  t: TestController,
  w: ManualWorker,
  state: 'BUILDING' | 'RUNNING',
  name?: string,
): Promise<Started> {
  const { job_id } = await t.admin.launchJob({ command: ['sleep', '60'], ...(name ? { name } : {}) });
  const a = await w.assignments(1).then((as) => as.find((x) => x.job_id === job_id));
  if (!a) throw new Error(`job ${job_id} was not assigned`);
  if (state === 'RUNNING') await w.report(a.attempt_id, 'RUNNING');
  expect((await t.admin.getJob(job_id)).state).toBe(state);
  return { job_id, attempt_id: a.attempt_id };
}

const names = async (c: RunplaneClient, q: { name?: string; prefix?: string }) =>
  (await c.findEndpoints(q)).endpoints.map((e) => e.name);

forEachDialect((dialect) => {
  const start = controllers(dialect);

  async function setup() {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 16 });
    return { t, w, viewer: await t.as('viewer') };
  }

  it('registers an endpoint for a RUNNING job; lookup by name and by prefix return it', async () => {
    const { t, w, viewer } = await setup();
    const job = await startJob(t, w, 'RUNNING');
    // The job registers with the worker's token (as the job's own process would through its agent).
    const ep = await w.client.registerEndpoint({
      name: 'actors/learner-0',
      address: '10.0.0.7:9000',
      metadata: { role: 'learner' },
      job_id: job.job_id,
    });
    expect(ep).toMatchObject({
      name: 'actors/learner-0',
      address: '10.0.0.7:9000',
      metadata: { role: 'learner' },
      job_id: job.job_id,
    });
    expect(ep.endpoint_id).toEqual(expect.any(String));
    await w.client.registerEndpoint({
      name: 'actors/learner-1',
      address: '10.0.0.7:9001',
      job_id: job.job_id,
    });
    await w.client.registerEndpoint({ name: 'evaluator', address: '10.0.0.7:9100', job_id: job.job_id });

    expect((await viewer.findEndpoints({ name: 'actors/learner-0' })).endpoints).toEqual([ep]);
    expect(await names(viewer, { prefix: 'actors/' })).toEqual(['actors/learner-0', 'actors/learner-1']);
    expect(await names(viewer, { prefix: 'act' })).toEqual(['actors/learner-0', 'actors/learner-1']);
    expect(await names(viewer, { prefix: '' })).toEqual([
      'actors/learner-0',
      'actors/learner-1',
      'evaluator',
    ]);
    expect(await names(viewer, { prefix: 'nothing' })).toEqual([]);
    // A name lookup is exact, not a prefix.
    expect(await names(viewer, { name: 'actors' })).toEqual([]);
  });

  it('treats % and _ in a prefix literally', async () => {
    const { t, w, viewer } = await setup();
    const job = await startJob(t, w, 'RUNNING');
    for (const name of ['a_%x', 'abc', 'a_b'])
      await w.client.registerEndpoint({ name, address: 'h:1', job_id: job.job_id });
    expect(await names(viewer, { prefix: 'a_%' })).toEqual(['a_%x']);
    expect(await names(viewer, { prefix: 'a_' })).toEqual(['a_%x', 'a_b']);
  });

  it('accepts a registration from a BUILDING job but shows it only once the job is RUNNING', async () => {
    const { t, w, viewer } = await setup();
    const job = await startJob(t, w, 'BUILDING');
    const ep = await w.client.registerEndpoint({ name: 'svc', address: 'h:1', job_id: job.job_id });
    expect(await names(viewer, { name: 'svc' })).toEqual([]);
    expect(await names(viewer, { prefix: 's' })).toEqual([]);

    await w.report(job.attempt_id, 'RUNNING');
    expect((await viewer.findEndpoints({ name: 'svc' })).endpoints.map((e) => e.endpoint_id)).toEqual([
      ep.endpoint_id,
    ]);
  });

  it("removes a job's endpoints when it ends", async () => {
    const { t, w, viewer } = await setup();
    const done = await startJob(t, w, 'RUNNING', 'done');
    const killed = await startJob(t, w, 'RUNNING', 'killed');
    const stays = await startJob(t, w, 'RUNNING', 'stays');
    const ep = await w.client.registerEndpoint({ name: 'svc/done', address: 'h:1', job_id: done.job_id });
    await w.client.registerEndpoint({ name: 'svc/killed', address: 'h:2', job_id: killed.job_id });
    await w.client.registerEndpoint({ name: 'svc/stays', address: 'h:3', job_id: stays.job_id });
    expect(await names(viewer, { prefix: 'svc/' })).toEqual(['svc/done', 'svc/killed', 'svc/stays']);

    await w.report(done.attempt_id, 'SUCCEEDED', 0);
    expect(await names(viewer, { name: 'svc/done' })).toEqual([]);
    await t.admin.terminateJob(killed.job_id);
    expect(await names(viewer, { prefix: 'svc/' })).toEqual(['svc/stays']);
    // Gone from the registry, not merely hidden.
    expect((await storeCounts(t)).endpoints).toBe(1);
    const err = await rejected(w.client.unregisterEndpoint(ep.endpoint_id));
    expect(err.status).toBe(404);
    expect(err.code).toBe('ENDPOINT_NOT_FOUND');
  });

  it('removes the endpoints of a job that fails and is retried', async () => {
    const { t, w, viewer } = await setup();
    const { job_id } = await t.admin.launchJob({ command: ['sleep', '60'], max_retries_failure: 1 });
    const [a] = await w.assignments(1);
    await w.report(a!.attempt_id, 'RUNNING');
    await w.client.registerEndpoint({ name: 'svc', address: 'h:1', job_id });
    expect(await names(viewer, { name: 'svc' })).toEqual(['svc']);
    await w.report(a!.attempt_id, 'FAILED', 1);
    // The address belonged to the failed process; the retry registers its own.
    expect(await names(viewer, { name: 'svc' })).toEqual([]);
    expect((await t.admin.getJob(job_id)).failure_count).toBe(1);
  });

  it('DELETE unregisters an endpoint', async () => {
    const { t, w, viewer } = await setup();
    const job = await startJob(t, w, 'RUNNING');
    const a = await w.client.registerEndpoint({ name: 'svc', address: 'h:1', job_id: job.job_id });
    const b = await w.client.registerEndpoint({ name: 'svc', address: 'h:2', job_id: job.job_id });
    expect((await viewer.findEndpoints({ name: 'svc' })).endpoints.map((e) => e.address)).toEqual([
      'h:1',
      'h:2',
    ]);
    await t.admin.unregisterEndpoint(a.endpoint_id);
    expect((await viewer.findEndpoints({ name: 'svc' })).endpoints.map((e) => e.endpoint_id)).toEqual([
      b.endpoint_id,
    ]);
    const again = await rejected(t.admin.unregisterEndpoint(a.endpoint_id));
    expect(again.status).toBe(404);
    expect(again.code).toBe('ENDPOINT_NOT_FOUND');
  });

  it('refuses to register for a job that is not running (409) or unknown (422), storing nothing', async () => {
    const { t, w } = await setup();
    const finished = await startJob(t, w, 'RUNNING');
    await w.report(finished.attempt_id, 'SUCCEEDED', 0);
    const pending = await t.admin.launchJob({ command: ['true'], resources: { cpu: 1000 } });
    const before = await storeCounts(t);

    for (const job_id of [finished.job_id, pending.job_id]) {
      const err = await rejected(w.client.registerEndpoint({ name: 'svc', address: 'h:1', job_id }));
      expect(err.status).toBe(409);
      expect(err.code).toBe('JOB_NOT_RUNNING');
    }
    const unknown = await rejected(
      w.client.registerEndpoint({ name: 'svc', address: 'h:1', job_id: 'job_nope' }),
    );
    expect(unknown.status).toBe(422);
    expect(unknown.details.map((d) => [d.field, d.code])).toEqual([['job_id', 'UNKNOWN_JOB']]);
    const invalid = await rejected(
      w.client.request('POST', '/api/v1/endpoints', { body: { name: '', job_id: 5 } }),
    );
    expect(invalid.status).toBe(422);
    expect(Object.fromEntries(invalid.details.map((d) => [d.field, d.code]))).toEqual({
      name: 'INVALID_LENGTH',
      address: 'REQUIRED',
      job_id: 'INVALID_TYPE',
    });
    expect(await storeCounts(t)).toEqual(before);
  });
});
