/**
 * The job API's contract for callers: LaunchJob validation and error answers (422, 415, 413, 400,
 * 404, 409), defaults, and ListJobs. No worker runs here: every job stays PENDING.
 */
import { expect, it } from 'vitest';
import type { ApiError } from '../../src/client/client.js';
import { ADMIN, type TestController } from '../helpers/controller.js';
import { controllers, forEachDialect, rejected, storeCounts } from './support.js';

/** The error details as field -> code. */
const codes = (e: ApiError) => Object.fromEntries(e.details.map((d) => [d.field, d.code]));

async function rawPost(
  t: TestController,
  path: string,
  body: string,
  contentType: string | null,
): Promise<{ status: number; body: { error?: { code: string } } }> {
  const headers: Record<string, string> = { authorization: `Bearer ${ADMIN}` };
  if (contentType !== null) headers['content-type'] = contentType;
  const res = await fetch(`${t.ctl.url}${path}`, { method: 'POST', headers, body });
  return { status: res.status, body: (await res.json()) as { error?: { code: string } } };
}

forEachDialect((dialect) => {
  const start = controllers(dialect);

  it('LaunchJob reports every invalid field at once with a code, and stores nothing', async () => {
    const t = await start();
    const before = await storeCounts(t);
    const err = await rejected(
      t.admin.request('POST', '/api/v1/jobs', {
        body: {
          // command is missing
          name: 5,
          env: 'FOO=bar',
          resources: { cpu: -1, gpu: 1.5, disk: 3 },
          max_retries_failure: 'twice',
          scheduling_timeout_s: -5,
          gang: { id: 'g' },
          priority: 'high',
        },
      }),
    );
    expect(err.status).toBe(422);
    expect(err.code).toBe('VALIDATION_FAILED');
    expect(codes(err)).toEqual({
      command: 'REQUIRED',
      name: 'INVALID_TYPE',
      env: 'INVALID_TYPE',
      'resources.cpu': 'OUT_OF_RANGE',
      'resources.gpu': 'INVALID_TYPE',
      'resources.disk': 'UNKNOWN_FIELD',
      max_retries_failure: 'INVALID_TYPE',
      scheduling_timeout_s: 'OUT_OF_RANGE',
      'gang.size': 'REQUIRED',
      priority: 'UNKNOWN_FIELD',
    });
    for (const d of err.details) expect(d.message).not.toBe('');
    expect(await storeCounts(t)).toEqual(before);
    expect((await t.admin.listJobs()).jobs).toEqual([]);
  });

  it('LaunchJob does not coerce types: a string is not a number and a command is an argv array', async () => {
    const t = await start();
    const err = await rejected(
      t.admin.request('POST', '/api/v1/jobs', {
        body: { command: 'echo hi', resources: { cpu: '2' }, labels: { team: 7 }, setup: [] },
      }),
    );
    expect(err.status).toBe(422);
    expect(codes(err)).toEqual({
      command: 'INVALID_TYPE',
      'resources.cpu': 'INVALID_TYPE',
      'labels.team': 'INVALID_TYPE',
      setup: 'INVALID_LENGTH',
    });
    const empty = await rejected(t.admin.request('POST', '/api/v1/jobs', { body: { command: [] } }));
    expect(codes(empty)).toEqual({ command: 'INVALID_LENGTH' });
    expect((await t.admin.listJobs()).jobs).toEqual([]);
  });

  it('rejects values outside an enum, in a body and in a query string', async () => {
    const t = await start();
    const q = await rejected(t.admin.request('GET', '/api/v1/jobs', { query: { state: 'DONE', limit: 0 } }));
    expect(q.status).toBe(422);
    expect(q.code).toBe('VALIDATION_FAILED');
    expect(codes(q)).toEqual({ 'query.state': 'INVALID_VALUE', 'query.limit': 'OUT_OF_RANGE' });

    const before = (await t.admin.listTokens()).tokens;
    const body = await rejected(t.admin.request('POST', '/api/v1/tokens', { body: { role: 'root' } }));
    expect(body.status).toBe(422);
    expect(codes(body)).toEqual({ role: 'INVALID_VALUE' });
    expect(body.details[0]?.message).toContain('operator');
    expect((await t.admin.listTokens()).tokens).toEqual(before);
  });

  it('answers 415 for a body that is not JSON, and stores nothing', async () => {
    const t = await start();
    const before = await storeCounts(t);
    const text = await rawPost(t, '/api/v1/jobs', 'command=true', 'text/plain');
    expect(text.status).toBe(415);
    expect(text.body.error?.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const form = await rawPost(t, '/api/v1/jobs', 'command=true', 'application/x-www-form-urlencoded');
    expect(form.status).toBe(415);
    expect(form.body.error?.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(await storeCounts(t)).toEqual(before);
  });

  it('answers 413 for a body over 1 MiB, and stores nothing', async () => {
    const t = await start();
    const before = await storeCounts(t);
    const big = JSON.stringify({ command: ['true'], env: { BIG: 'x'.repeat(1024 * 1024 + 10) } });
    const res = await rawPost(t, '/api/v1/jobs', big, 'application/json');
    expect(res.status).toBe(413);
    expect(res.body.error?.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await storeCounts(t)).toEqual(before);
    // Just under the limit is accepted: the limit is about size, not about this body's shape.
    const ok = await rawPost(
      t,
      '/api/v1/jobs',
      JSON.stringify({ command: ['true'], env: { BIG: 'x'.repeat(60_000) } }),
      'application/json',
    );
    expect(ok.status).toBe(201);
  });

  it('answers 400 MALFORMED_JSON for broken or empty JSON, and stores nothing', async () => {
    const t = await start();
    const before = await storeCounts(t);
    const broken = await rawPost(t, '/api/v1/jobs', '{"command": ["true"', 'application/json');
    expect(broken.status).toBe(400);
    expect(broken.body.error?.code).toBe('MALFORMED_JSON');
    const empty = await rawPost(t, '/api/v1/jobs', '', 'application/json');
    expect(empty.status).toBe(400);
    expect(empty.body.error?.code).toBe('MALFORMED_JSON');
    expect(await storeCounts(t)).toEqual(before);
  });

  it('answers 404 JOB_NOT_FOUND for unknown job ids on every job route', async () => {
    const t = await start();
    const missing = 'job_doesnotexist';
    for (const call of [
      () => t.admin.getJob(missing),
      () => t.admin.terminateJob(missing),
      () => t.admin.jobLogs(missing),
    ]) {
      const err = await rejected(call());
      expect(err.status).toBe(404);
      expect(err.code).toBe('JOB_NOT_FOUND');
    }
  });

  it('refuses a duplicate name under the same parent with 409, but allows it under another parent', async () => {
    const t = await start();
    const p1 = await t.admin.launchJob({ name: 'parent-1', command: ['true'] });
    const p2 = await t.admin.launchJob({ name: 'parent-2', command: ['true'] });
    await t.admin.launchJob({ name: 'train', command: ['true'] });
    await t.admin.launchJob({ name: 'train', command: ['true'], parent_job_id: p1.job_id });

    const before = await storeCounts(t);
    const top = await rejected(t.admin.launchJob({ name: 'train', command: ['false'] }));
    expect(top.status).toBe(409);
    expect(top.code).toBe('DUPLICATE_JOB_NAME');
    const child = await rejected(
      t.admin.launchJob({ name: 'train', command: ['false'], parent_job_id: p1.job_id }),
    );
    expect(child.status).toBe(409);
    expect(child.code).toBe('DUPLICATE_JOB_NAME');
    expect(await storeCounts(t)).toEqual(before);

    const other = await t.admin.launchJob({ name: 'train', command: ['true'], parent_job_id: p2.job_id });
    const job = await t.admin.getJob(other.job_id);
    expect(job.name).toBe('train');
    expect(job.parent_job_id).toBe(p2.job_id);
    expect((await t.admin.listJobs({ parent: p1.job_id })).jobs.map((j) => j.name)).toEqual(['train']);
    expect((await t.admin.listJobs({ parent: p2.job_id })).jobs.map((j) => j.job_id)).toEqual([other.job_id]);
  });

  it('launches sent together are checked one by one: names and gangs within the burst, labels kept', async () => {
    const t = await start({ workers: 0 });
    const settle = (p: Promise<{ job_id: string }>) =>
      p.then(
        (r) => ({ ok: r.job_id }),
        (e: unknown) => ({ err: (e as { code?: string }).code }),
      );
    // One burst (one group commit): duplicates of a name inside it, a gang of 3 with 4 members.
    const names = ['a', 'b', 'a', 'c', 'b', 'a'];
    const outcomes = await Promise.all([
      ...names.map((name, i) =>
        settle(t.admin.launchJob({ name, command: ['true'], labels: { i: String(i) } })),
      ),
      ...[0, 1, 2, 3].map((i) =>
        settle(t.admin.launchJob({ name: `g${i}`, command: ['true'], gang: { id: 'burst', size: 3 } })),
      ),
    ]);
    const named = outcomes.slice(0, names.length);
    // Requests on parallel connections arrive in any order: one launch of each name wins.
    for (const name of ['a', 'b', 'c']) {
      const mine = named.filter((_, i) => names[i] === name);
      expect(mine.filter((o) => 'ok' in o)).toHaveLength(1);
      for (const o of mine.filter((o) => 'err' in o)) expect(o).toEqual({ err: 'DUPLICATE_JOB_NAME' });
    }
    const gang = outcomes.slice(names.length);
    expect(gang.filter((o) => 'ok' in o)).toHaveLength(3);
    expect(gang.filter((o) => 'err' in o).map((o) => ('err' in o ? o.err : null))).toEqual(['GANG_FULL']);

    // Each stored once, with its labels and its job.submitted event.
    const listed = (await t.admin.listJobs({ limit: 100 })).jobs;
    const ids = [...named, ...gang].flatMap((o) => ('ok' in o ? [o.ok] : []));
    expect(listed.map((j) => j.job_id).sort()).toEqual([...ids].sort());
    expect(listed.map((j) => j.name).sort()).toEqual(
      ['a', 'b', 'c', ...listed.filter((j) => j.name.startsWith('g')).map((j) => j.name)].sort(),
    );
    const winner = named.findIndex((o, i) => names[i] === 'c' && 'ok' in o);
    expect((await t.admin.listJobs({ label: `i=${winner}` })).jobs.map((j) => j.name)).toEqual(['c']);
    const submitted = await t.ctl.store.db
      .selectFrom('events')
      .select('entity_id')
      .where('type', '=', 'job.submitted')
      .execute();
    expect(submitted.map((e) => e.entity_id).sort()).toEqual([...ids].sort());
  });

  it('refuses an unknown parent_job_id with 422 naming the field, and stores nothing', async () => {
    const t = await start();
    const before = await storeCounts(t);
    const err = await rejected(t.admin.launchJob({ command: ['true'], parent_job_id: 'job_nosuchparent' }));
    expect(err.status).toBe(422);
    expect(err.code).toBe('VALIDATION_FAILED');
    expect(codes(err)).toEqual({ parent_job_id: 'UNKNOWN_PARENT' });
    expect(await storeCounts(t)).toEqual(before);
  });

  it('refuses a gang member declared with another size (409), and stores nothing', async () => {
    const t = await start();
    await t.admin.launchJob({ command: ['true'], gang: { id: 'g1', size: 2 } });
    const before = await storeCounts(t);
    const err = await rejected(t.admin.launchJob({ command: ['true'], gang: { id: 'g1', size: 3 } }));
    expect(err.status).toBe(409);
    expect(err.code).toBe('GANG_SIZE_MISMATCH');
    expect(await storeCounts(t)).toEqual(before);
  });

  it('LaunchJob returns 201 with a job id, and GetJobStatus shows the request with its defaults', async () => {
    const t = await start();
    const res = await fetch(`${t.ctl.url}/api/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: ['python', 'train.py', '--lr', '0.1'], labels: { team: 'rl' } }),
    });
    expect(res.status).toBe(201);
    const { job_id } = (await res.json()) as { job_id: string };
    const job = await t.admin.getJob(job_id);
    expect(job).toMatchObject({
      job_id,
      name: job_id,
      state: 'PENDING',
      command: ['python', 'train.py', '--lr', '0.1'],
      env: {},
      cwd: null,
      setup: null,
      resources: { cpu: 1, memory_mb: 0, gpu: 0, device_type: null },
      labels: { team: 'rl' },
      max_retries_failure: 0,
      max_retries_preemption: 100,
      scheduling_timeout_s: 0,
      parent_job_id: null,
      gang: null,
      run_id: null,
      failure_count: 0,
      preemption_count: 0,
      current_attempt_id: null,
      attempts: [],
      started_at: null,
      finished_at: null,
    });
    expect(Date.parse(job.submitted_at ?? '')).not.toBeNaN();
  });

  it('ListJobs filters by state, label and parent, and pages with a cursor', async () => {
    const t = await start();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(
        (
          await t.admin.launchJob({
            name: `j${i}`,
            command: ['true'],
            labels: { parity: i % 2 === 0 ? 'even' : 'odd' },
          })
        ).job_id,
      );
    }
    await t.admin.terminateJob(ids[1]!);

    const page1 = await t.admin.listJobs({ limit: 2 });
    expect(page1.jobs.map((j) => j.job_id)).toEqual(ids.slice(0, 2));
    expect(page1.next_cursor).not.toBeNull();
    const page2 = await t.admin.listJobs({ limit: 2, cursor: page1.next_cursor! });
    expect(page2.jobs.map((j) => j.job_id)).toEqual(ids.slice(2, 4));
    const page3 = await t.admin.listJobs({ limit: 2, cursor: page2.next_cursor! });
    expect(page3.jobs.map((j) => j.job_id)).toEqual(ids.slice(4));
    expect(page3.next_cursor).toBeNull();

    expect((await t.admin.listJobs({ label: 'parity=even' })).jobs.map((j) => j.name)).toEqual([
      'j0',
      'j2',
      'j4',
    ]);
    expect((await t.admin.listJobs({ state: 'KILLED' })).jobs.map((j) => j.name)).toEqual(['j1']);
    expect(
      (await t.admin.listJobs({ state: 'PENDING', label: 'parity=odd' })).jobs.map((j) => j.name),
    ).toEqual(['j3']);
    expect((await t.admin.listJobs({ label: ['parity=even', 'parity=odd'] })).jobs).toEqual([]);
  });
});
