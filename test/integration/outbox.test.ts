/**
 * The transactional outbox and its relay: every state change of a job wrote its event, in order;
 * subscribers receive them in sequence order, and a failing handler is retried without the
 * cursor skipping the event.
 */
import pino from 'pino';
import { expect, it, vi } from 'vitest';
import type { StoredEvent } from '../../src/events/catalog.js';
import { outboxRepo } from '../../src/events/outbox-repo.js';
import { EventRelay } from '../../src/events/relay.js';
import { systemClock } from '../../src/shared/clock.js';
import { eventually, type TestController } from '../helpers/controller.js';
import { controllers, forEachDialect, ManualWorker, waitForState } from './support.js';

interface Row {
  seq: number;
  type: string;
  state: string | undefined;
}

/** The job.* events of one job, from the events table, in sequence order. */
async function jobEvents(t: TestController, jobId: string): Promise<Row[]> {
  const rows = await t.ctl.store.db
    .selectFrom('events')
    .select(['seq', 'type', 'payload'])
    .where('entity_id', '=', jobId)
    .where('type', 'like', 'job.%')
    .orderBy('seq')
    .execute();
  return rows.map((r) => ({
    seq: Number(r.seq),
    type: r.type,
    state: (JSON.parse(r.payload) as { state?: string }).state,
  }));
}

const of = (jobId: string, events: StoredEvent[]) =>
  events
    .filter((e) => (e.payload as { job_id?: string }).job_id === jobId)
    .map((e) => [e.type, (e.payload as { state?: string }).state]);

forEachDialect((dialect) => {
  const start = controllers(dialect);

  it('writes an event for every state change of a job, in order', async () => {
    const t = await start({ workers: 1, workerCpu: 2 });
    const { job_id } = await t.admin.launchJob({ command: ['true'] });
    await waitForState(t.admin, job_id, 'SUCCEEDED');
    const events = await jobEvents(t, job_id);
    expect(events.map((e) => [e.type, e.state])).toEqual([
      ['job.submitted', undefined],
      ['job.state_changed', 'BUILDING'],
      ['job.state_changed', 'RUNNING'],
      ['job.state_changed', 'SUCCEEDED'],
    ]);
    const seqs = events.map((e) => e.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);

    // Attempts have their own events, and the whole log has unique ids.
    const attempt = await t.ctl.store.db
      .selectFrom('events')
      .select(['payload'])
      .where('type', '=', 'attempt.state_changed')
      .where('entity_id', '=', job_id)
      .orderBy('seq')
      .execute();
    expect(
      attempt.map((r) => (JSON.parse(r.payload) as { state: string; exit_code: number | null }).state),
    ).toEqual(['RUNNING', 'SUCCEEDED']);
    const ids = await t.ctl.store.db.selectFrom('events').select('id').execute();
    expect(new Set(ids.map((r) => r.id)).size).toBe(ids.length);
  });

  it('writes the events of retries, kills and worker registration', async () => {
    const t = await start({ workers: 0 });
    const w = await ManualWorker.register(t, 'w', { cpu: 2 });
    const { job_id } = await t.admin.launchJob({ command: ['false'], max_retries_failure: 1 });
    const [a] = await w.assignments(1);
    await w.report(a!.attempt_id, 'FAILED', 1);
    await waitForState(t.admin, job_id, 'BUILDING');
    await t.admin.terminateJob(job_id);
    expect((await jobEvents(t, job_id)).map((e) => [e.type, e.state])).toEqual([
      ['job.submitted', undefined],
      ['job.state_changed', 'BUILDING'],
      ['job.state_changed', 'PENDING'],
      ['job.state_changed', 'BUILDING'],
      ['job.state_changed', 'KILLED'],
    ]);
    const registered = await t.ctl.store.db
      .selectFrom('events')
      .select('type')
      .where('entity_id', '=', w.id)
      .execute();
    expect(registered.map((r) => r.type)).toEqual(['worker.registered']);
  });

  it('delivers events to a subscriber in sequence order', async () => {
    const t = await start({ workers: 1, workerCpu: 2 });
    const got: StoredEvent[] = [];
    await t.ctl.relay.subscribe(
      'test-ordered',
      'job.*',
      (e) => {
        got.push(e);
      },
      true,
    );
    const first = await t.admin.launchJob({ command: ['true'] });
    const second = await t.admin.launchJob({ command: ['sh', '-c', 'exit 2'] });
    await waitForState(t.admin, first.job_id, 'SUCCEEDED');
    await waitForState(t.admin, second.job_id, 'FAILED');
    await eventually(() => of(first.job_id, got).length === 4 && of(second.job_id, got).length === 4);

    expect(got.every((e) => e.type.startsWith('job.'))).toBe(true);
    const seqs = got.map((e) => e.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    expect(of(first.job_id, got)).toEqual([
      ['job.submitted', undefined],
      ['job.state_changed', 'BUILDING'],
      ['job.state_changed', 'RUNNING'],
      ['job.state_changed', 'SUCCEEDED'],
    ]);
    expect(of(second.job_id, got).at(-1)).toEqual(['job.state_changed', 'FAILED']);
    // What was delivered is exactly what the table holds for these jobs.
    const stored = [...(await jobEvents(t, first.job_id)), ...(await jobEvents(t, second.job_id))]
      .map((e) => e.seq)
      .sort((a, b) => a - b);
    expect(seqs.filter((s) => stored.includes(s))).toEqual(stored);
  });

  it('retries a handler that throws, without the cursor skipping the event', async () => {
    const t = await start({ workers: 0 });
    const attempts: number[] = [];
    const delivered: number[] = [];
    let failOn: number | null = null;
    await t.ctl.relay.subscribe(
      'test-flaky',
      'job.*',
      (e) => {
        attempts.push(e.seq);
        if (failOn === null) {
          failOn = e.seq;
          throw new Error('transient failure');
        }
        delivered.push(e.seq);
      },
      true,
    );
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await t.admin.launchJob({ command: ['true'] })).job_id);
    const expected = (
      await t.ctl.store.db
        .selectFrom('events')
        .select('seq')
        .where('type', 'like', 'job.%')
        .orderBy('seq')
        .execute()
    ).map((r) => Number(r.seq));
    expect(expected).toHaveLength(3);

    await eventually(() => delivered.length >= 3);
    expect(failOn).toBe(expected[0]);
    // The failed event came again, first, and nothing after it was handled before it.
    expect(attempts.slice(0, 2)).toEqual([expected[0], expected[0]]);
    expect(delivered).toEqual(expected);
    await eventually(async () => {
      const cursor = await t.ctl.store.db
        .selectFrom('event_cursors')
        .select('last_seq')
        .where('subscriber', '=', 'test-flaky')
        .executeTakeFirst();
      return Number(cursor?.last_seq) >= expected[2]!;
    });
  });

  it('prepares each batch with the events the lane matches before its handler gets them; a failing prepare holds nothing back', async () => {
    const t = await start({ workers: 0 });
    const log: string[] = [];
    let failNext = false;
    await t.ctl.relay.subscribe(
      'test-prepared',
      'job.submitted',
      (e) => {
        log.push(`handle ${e.seq}`);
      },
      true,
      async (events) => {
        log.push(`prepare ${events.map((e) => `${e.type}:${e.seq}`).join(',')}`);
        if (failNext) {
          failNext = false;
          throw new Error('lookup failed');
        }
      },
    );
    const first = await t.admin.launchJob({ command: ['true'] });
    const seqOf = async (jobId: string) =>
      Number(
        (
          await t.ctl.store.db
            .selectFrom('events')
            .select('seq')
            .where('type', '=', 'job.submitted')
            .where('entity_id', '=', jobId)
            .executeTakeFirstOrThrow()
        ).seq,
      );
    const s1 = await seqOf(first.job_id);
    await eventually(() => log.includes(`handle ${s1}`));
    // Only the matching events are prepared (not the job's other events), before the handler.
    expect(log.indexOf(`prepare job.submitted:${s1}`)).toBeGreaterThanOrEqual(0);
    expect(log.indexOf(`prepare job.submitted:${s1}`)).toBeLessThan(log.indexOf(`handle ${s1}`));
    failNext = true;
    const second = await t.admin.launchJob({ command: ['true'] });
    const s2 = await seqOf(second.job_id);
    await eventually(() => log.includes(`handle ${s2}`));
    expect(log.filter((l) => l === `handle ${s2}`)).toHaveLength(1);
    expect(log.filter((l) => l.startsWith('prepare')).every((l) => !l.includes('state_changed'))).toBe(true);
  });

  it('a subscriber resumes from its saved cursor after a restart of the relay', async () => {
    const t = await start({ workers: 0 });
    const log = pino({ level: 'silent' });
    const first = new EventRelay(t.ctl.store, systemClock, log);
    first.start();
    const seen: StoredEvent[] = [];
    await first.subscribe(
      'test-durable',
      'job.submitted',
      (e) => {
        seen.push(e);
      },
      true,
    );
    const a = await t.admin.launchJob({ command: ['true'] });
    await eventually(() => seen.length === 1);
    await eventually(async () => {
      const c = await t.ctl.store.db
        .selectFrom('event_cursors')
        .select('last_seq')
        .where('subscriber', '=', 'test-durable')
        .executeTakeFirst();
      return Number(c?.last_seq) >= seen[0]!.seq;
    });
    await first.stop();
    const b = await t.admin.launchJob({ command: ['true'] });

    const second = new EventRelay(t.ctl.store, systemClock, log);
    second.start();
    const again: StoredEvent[] = [];
    try {
      await second.subscribe(
        'test-durable',
        'job.submitted',
        (e) => {
          again.push(e);
        },
        true,
      );
      await eventually(() => again.length >= 1);
    } finally {
      await second.stop();
    }
    expect(seen.map((e) => (e.payload as { job_id: string }).job_id)).toEqual([a.job_id]);
    expect(again.map((e) => (e.payload as { job_id: string }).job_id)).toEqual([b.job_id]);
  });

  it('lanes at the same cursor share one read of the log; each still gets every event', async () => {
    const t = await start({ workers: 0 });
    // Only this relay reads the log during the test.
    await t.ctl.relay.stop();
    const relay = new EventRelay(t.ctl.store, systemClock, pino({ level: 'silent' }), { pollMs: 60_000 });
    const seen = new Map<string, string[]>();
    const lanes = ['a', 'b', 'c', 'd'];
    try {
      relay.start();
      for (const name of lanes) {
        seen.set(name, []);
        await relay.subscribe(`test-shared-${name}`, 'job.submitted', (e) => {
          seen.get(name)?.push(e.id);
        });
      }
      await eventually(() => relay.status().every((l) => !l.name.startsWith('test-shared') || l.cursor >= 0));
      const reads = vi.spyOn(outboxRepo, 'readAfter');
      let commits = 0;
      const stopCounting = t.ctl.store.onCommit(() => {
        commits += 1;
      });
      try {
        const { job_id } = await t.admin.launchJob({ command: ['true'] });
        await eventually(() => lanes.every((n) => seen.get(n)?.length === 1));
        // Each commit woke four lanes at one cursor: one read per commit, not four.
        expect(commits).toBeGreaterThan(0);
        expect(reads.mock.calls.length).toBeGreaterThan(0);
        expect(reads.mock.calls.length).toBeLessThanOrEqual(commits);
        const ids = await t.ctl.store.db
          .selectFrom('events')
          .select('id')
          .where('entity_id', '=', job_id)
          .execute();
        for (const n of lanes) expect(ids.map((r) => r.id)).toContain(seen.get(n)?.[0]);
      } finally {
        stopCounting();
        reads.mockRestore();
      }
    } finally {
      await relay.stop();
    }
  });

  it('a commit wakes only the lanes whose pattern matches an event it wrote; a skipped lane still gets every event later', async () => {
    const t = await start({ workers: 0 });
    await t.ctl.relay.stop();
    const relay = new EventRelay(t.ctl.store, systemClock, pino({ level: 'silent' }), { pollMs: 60_000 });
    const kills: string[] = [];
    try {
      relay.start();
      await relay.subscribe('test-kills', 'job.state_changed', (e) => {
        kills.push((e.payload as { job_id: string }).job_id);
      });
      const reads = vi.spyOn(outboxRepo, 'readAfter');
      const seen: Array<ReadonlySet<string>> = [];
      const stop = t.ctl.store.onCommit((c) => seen.push(c.eventTypes));
      try {
        // Submissions write job.submitted only: nothing for this lane, so it reads nothing.
        const a = await t.admin.launchJob({ command: ['true'] });
        const b = await t.admin.launchJob({ command: ['true'] });
        expect(seen.some((types) => types.has('job.submitted'))).toBe(true);
        await new Promise((r) => setTimeout(r, 100));
        expect(reads).not.toHaveBeenCalled();
        // A kill writes job.state_changed: the lane wakes and reads past the skipped events.
        await t.admin.terminateJob(b.job_id);
        await eventually(() => kills.includes(b.job_id));
        expect(reads).toHaveBeenCalled();
        expect(kills).not.toContain(a.job_id);
      } finally {
        stop();
        reads.mockRestore();
      }
    } finally {
      await relay.stop();
    }
  });
});
