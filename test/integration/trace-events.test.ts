/**
 * Trace context through the event log: an event row keeps the traceparent of the trace it was
 * written in (an HTTP request, a job's own requests, the handler of a traced event), and its
 * subscribers run in that trace. So a pipeline stage launched by an event handler continues the
 * trace of the request that started the pipeline, and what a job's process reports comes back
 * into its trace. Group commits (launches, heartbeats) keep each caller's own trace.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { event, type StoredEvent } from '../../src/events/catalog.js';
import { outboxRepo } from '../../src/events/outbox-repo.js';
import { EventRelay } from '../../src/events/relay.js';
import { systemClock } from '../../src/shared/clock.js';
import { extractTraceContext, installContextManager } from '../../src/tracing/context.js';
import { ADMIN, eventually, type TestController } from '../helpers/controller.js';
import { REPO_ROOT } from '../helpers/processes.js';
import { controllers, forEachDialect, waitForState } from './support.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const OTHER_TRACE = 'a'.repeat(31) + 'b';
const tp = (traceId: string, span = '00f067aa0ba902b7') => `00-${traceId}-${span}-01`;
const traceIdOf = (traceparent: string | null | undefined) => traceparent?.split('-')[1] ?? null;
const sh = (script: string) => ['sh', '-c', script];

async function post(t: TestController, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${t.ctl.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status >= 300) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Every event row of the log, in order. */
async function events(t: TestController): Promise<StoredEvent[]> {
  return outboxRepo.readAfter(t.ctl.store.db, 0, 10_000);
}

async function eventWhere(t: TestController, pred: (e: StoredEvent) => boolean): Promise<StoredEvent> {
  return eventually(async () => (await events(t)).find(pred));
}

/** The trace id a handler runs in (null: in no trace). */
const activeTraceId = () => trace.getSpanContext(context.active())?.traceId ?? null;

forEachDialect((dialect) => {
  const start = controllers(dialect);

  describe('trace context through events', () => {
    it("a traced request's events carry its traceparent; relay subscribers run in it; none without one", async () => {
      const t = await start();
      const seen = new Map<string, string | null>();
      await t.ctl.events.relay.subscribe('test.trace', 'job.submitted', (ev) => {
        seen.set((ev.payload as { job_id: string }).job_id, activeTraceId());
      });
      const traced = (await post(t, '/api/v1/jobs', { command: ['true'] }, { traceparent: tp(TRACE_ID) }))
        .job_id as string;
      const plain = (await post(t, '/api/v1/jobs', { command: ['true'] })).job_id as string;

      const submitted = (id: string) =>
        eventWhere(t, (e) => e.type === 'job.submitted' && e.entity_id === id);
      const tracedRow = await submitted(traced);
      expect(traceIdOf(tracedRow.traceparent)).toBe(TRACE_ID);
      // The row's traceparent is the job's TRACEPARENT: the job and its events share one trace.
      expect(tracedRow.traceparent).toBe((await t.admin.getJob(traced)).env.TRACEPARENT);
      expect(await outboxRepo.findById(t.ctl.store.db, tracedRow.id)).toMatchObject({
        traceparent: tracedRow.traceparent,
      });
      expect((await submitted(plain)).traceparent).toBeNull();

      await eventually(() => seen.size === 2);
      expect(seen.get(traced)).toBe(TRACE_ID);
      expect(seen.get(plain)).toBeNull();
    });

    it("handlers run in their own event's trace, not in the context that woke the relay", async () => {
      installContextManager();
      const t = await start();
      // Written before the relay starts: one in a trace, one in none.
      await context.with(extractTraceContext({ traceparent: tp(OTHER_TRACE) }), () =>
        t.ctl.store.write((tx) =>
          outboxRepo.append(
            tx,
            [event('worker.registered', 'w1', { worker_id: 'w1', name: 'a' })],
            Date.now(),
          ),
        ),
      );
      await t.ctl.store.write((tx) =>
        outboxRepo.append(tx, [event('worker.registered', 'w2', { worker_id: 'w2', name: 'b' })], Date.now()),
      );
      const relay = new EventRelay(t.ctl.store, systemClock, pino({ level: 'silent' }), {
        pollMs: 3_600_000,
      });
      const seen = new Map<string, string | null>();
      await relay.subscribe(
        'test.isolated',
        'worker.registered',
        (ev) => {
          seen.set(ev.entity_id, activeTraceId());
        },
        true,
      );
      // Started (and so first delivering) inside a third trace, as a relay woken by a request's commit is.
      context.with(extractTraceContext({ traceparent: tp(TRACE_ID) }), () => relay.start());
      try {
        await eventually(() => seen.size === 2);
      } finally {
        await relay.stop();
      }
      expect(seen.get('w1')).toBe(OTHER_TRACE);
      expect(seen.get('w2')).toBeNull();
    });

    it("launches and heartbeats committed together keep each caller's own trace", async () => {
      const t = await start();
      const traces = [TRACE_ID, OTHER_TRACE, null] as const;
      const headers = (tr: string | null): Record<string, string> => (tr ? { traceparent: tp(tr) } : {});
      // Sent together: the job service writes them in one group commit.
      const jobs = await Promise.all(
        traces.map(
          async (tr) => (await post(t, '/api/v1/jobs', { command: ['true'] }, headers(tr))).job_id as string,
        ),
      );
      for (const [i, id] of jobs.entries()) {
        const row = await eventWhere(t, (e) => e.type === 'job.submitted' && e.entity_id === id);
        expect(traceIdOf(row.traceparent)).toBe(traces[i]);
      }

      const runs = await Promise.all(traces.map(() => t.admin.createRun({})));
      await Promise.all(
        runs.map((run, i) =>
          fetch(`${t.ctl.url}/api/v1/runs/${run.run_id}/heartbeat`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${run.token}`,
              'content-type': 'application/json',
              ...headers(traces[i] ?? null),
            },
            body: JSON.stringify({
              run_id: run.run_id,
              status: 'running',
              step: 1,
              samples_per_sec: 1,
              loss: 0.5,
              checkpoint_version: 0,
            }),
          }).then((r) => expect(r.status).toBe(200)),
        ),
      );
      for (const [i, run] of runs.entries()) {
        const row = await eventWhere(
          t,
          (e) =>
            e.type === 'run.status' &&
            e.entity_id === run.run_id &&
            (e.payload as { cause: string }).cause === 'heartbeat',
        );
        expect(traceIdOf(row.traceparent)).toBe(traces[i]);
      }
    });

    it('an event posted with a traceparent header stores it; without one, null; a malformed one, null', async () => {
      const t = await start();
      const publish = (n: number, h: Record<string, string>) =>
        post(
          t,
          '/api/v1/events',
          { type: 'SELFPLAY_COMPLETE', payload: { config_key: 'c1', games_generated: n } },
          h,
        );
      const a = (await publish(1, { traceparent: tp(TRACE_ID) })).event_id as string;
      const b = (await publish(2, {})).event_id as string;
      const c = (await publish(3, { traceparent: 'garbage' })).event_id as string;
      expect(traceIdOf((await outboxRepo.findById(t.ctl.store.db, a))?.traceparent)).toBe(TRACE_ID);
      expect((await outboxRepo.findById(t.ctl.store.db, b))?.traceparent).toBeNull();
      expect((await outboxRepo.findById(t.ctl.store.db, c))?.traceparent).toBeNull();
    });

    it('a pipeline started in a trace launches its next stage, from the event handler, in that trace', async () => {
      // The coordinator's own loop stays out of it: every launch here is the request's or a handler's.
      const t = await start({
        workers: 1,
        workerCpu: 2,
        autoTriggerPipeline: 'true',
        pipelineIntervalMs: '1h',
      });
      const result = JSON.stringify({ games_generated: 3 });
      await post(
        t,
        '/api/v1/pipelines',
        {
          config_key: 'trace_cfg',
          stages: {
            selfplay: { command: sh(`printf '%s' '${result}' > "$RUNPLANE_STAGE_RESULT"`) },
            data_sync: { command: sh('true') },
          },
        },
        { traceparent: tp(TRACE_ID) },
      );
      const done = await eventually(async () => {
        const p = await t.admin.getPipeline('trace_cfg');
        return p.status !== 'running' ? p : undefined;
      }, 30_000);
      expect(done.status).toBe('completed');
      const [first, second] = done.attempts;
      expect([first?.stage, second?.stage]).toEqual(['selfplay', 'data_sync']);
      const firstJob = await t.admin.getJob(first?.job_id ?? '');
      const secondJob = await t.admin.getJob(second?.job_id ?? '');
      expect(traceIdOf(firstJob.env.TRACEPARENT)).toBe(TRACE_ID);
      // Launched by the handler of the selfplay completion, which ran in the event's trace.
      expect(traceIdOf(secondJob.env.TRACEPARENT)).toBe(TRACE_ID);

      const all = await events(t);
      // The chain in between: the first job's end (reported by the worker, in no trace of its own)
      // is in the job's trace, and so is the completion event its handler published.
      const ended = all.find(
        (e) =>
          e.type === 'job.state_changed' &&
          e.entity_id === firstJob.job_id &&
          (e.payload as { state: string }).state === 'SUCCEEDED',
      );
      expect(traceIdOf(ended?.traceparent)).toBe(TRACE_ID);
      const completed = all.find((e) => e.type === 'pipeline.selfplay.completed');
      expect(traceIdOf(completed?.traceparent)).toBe(TRACE_ID);
    });

    it("a job's process continues its trace back into the events of its requests", async () => {
      const t = await start({ workers: 1, workerCpu: 2 });
      const operator = await t.admin.createToken('operator');
      const run = await t.admin.createRun({ name: 'traced-learner' });
      // The job's process: the TypeScript client, which sends the job's TRACEPARENT as traceparent.
      const script = join(t.config.dataDir, 'traced-job.mts');
      writeFileSync(
        script,
        `import { RunplaneClient } from ${JSON.stringify(join(REPO_ROOT, 'src/client/client.ts'))};
const env = process.env;
const learner = new RunplaneClient(env.RUNPLANE_CONTROLLER_URL, env.RUNPLANE_RUN_TOKEN);
await learner.heartbeat(env.RUNPLANE_RUN_ID, {
  run_id: env.RUNPLANE_RUN_ID, status: 'running', step: 7, samples_per_sec: 2, loss: 0.25, checkpoint_version: 1,
});
const producer = new RunplaneClient(env.RUNPLANE_CONTROLLER_URL, env.RP_OPERATOR_TOKEN);
await producer.publishEvent({ type: 'SELFPLAY_COMPLETE', id: 'from-job', payload: { config_key: 'job_cfg', games_generated: 1 } });
`,
      );
      const job = (
        await post(
          t,
          '/api/v1/jobs',
          {
            command: [process.execPath, '--import', 'tsx', script],
            cwd: REPO_ROOT,
            run_id: run.run_id,
            env: { RP_OPERATOR_TOKEN: operator.token },
          },
          { traceparent: tp(TRACE_ID) },
        )
      ).job_id as string;
      await waitForState(t.admin, job, 'SUCCEEDED', 60_000);

      const all = await events(t);
      const beat = all.find(
        (e) =>
          e.type === 'run.status' &&
          e.entity_id === run.run_id &&
          (e.payload as { cause: string; step: number | null }).step === 7,
      );
      expect(traceIdOf(beat?.traceparent)).toBe(TRACE_ID);
      expect(traceIdOf(all.find((e) => e.id === 'from-job')?.traceparent)).toBe(TRACE_ID);
      // The run was created outside any trace: its creation event is in none.
      expect(all.find((e) => e.type === 'run.created' && e.entity_id === run.run_id)?.traceparent).toBeNull();
    });
  });
});
