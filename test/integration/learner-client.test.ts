/**
 * The TypeScript learner (src/client/learner.ts) against a real controller: heartbeat cadence,
 * 429 and 5xx backoff, command handlers acknowledged after they return, redelivery dedupe,
 * and a close() that finishes the run and leaves no timer behind. Time is stepped with fake
 * timers handed to the learner, so nothing here waits on a wall clock.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ApiError, RunplaneClient } from '../../src/client/client.js';
import { Learner, type LearnerOptions, type LearnerTimers } from '../../src/client/learner.js';
import type { CommandEnvelope } from '../../src/runs/schemas.js';
import { eventually, type TestController } from '../helpers/controller.js';
import { REPO_ROOT } from '../helpers/processes.js';
import { controllers, forEachDialect } from './support.js';

/** Timers the test steps by hand; `auto` makes every timer fire on the next turn instead. */
class FakeTimers implements LearnerTimers {
  private seq = 0;
  readonly pending = new Map<number, { fn: () => void; ms: number }>();
  /** Every delay asked for, in order. */
  readonly requested: number[] = [];
  private autoMode = false;

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.requested.push(ms);
    if (this.autoMode) setImmediate(fn);
    else this.pending.set(id, { fn, ms });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  /** The delays of the timers now pending. */
  delays(): number[] {
    return [...this.pending.values()].map((t) => t.ms);
  }
  /** Fires every pending timer now. */
  fireAll(): void {
    const due = [...this.pending.values()];
    this.pending.clear();
    for (const t of due) t.fn();
  }
  /** From now on timers fire on the next turn of the event loop (for close() paths). */
  auto(): void {
    this.autoMode = true;
    this.fireAll();
  }
}

const quiet: LearnerOptions['onError'] = () => undefined;

function envelope(type: CommandEnvelope['type'], payload: Record<string, unknown> = {}): CommandEnvelope {
  return {
    id: crypto.randomUUID(),
    type,
    issued_at: new Date().toISOString(),
    actor: { type: 'operator', id: 'learner-test' },
    payload,
  };
}

async function newRun(t: TestController) {
  return t.admin.createRun({ name: 'learner-test' });
}

function learnerFor(
  t: TestController,
  run: { run_id: string; token: string },
  opts: Partial<LearnerOptions> = {},
): Learner {
  return new Learner({
    controllerUrl: t.ctl.url,
    runId: run.run_id,
    token: run.token,
    env: {},
    onError: quiet,
    random: () => 0.5,
    ...opts,
  });
}

/** A deferred: a promise plus its resolver, to hold a handler open. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

forEachDialect((dialect) => {
  const start = controllers(dialect);

  describe('heartbeats', () => {
    it('sends the first heartbeat on start and the next ones at the cadence the controller names', async () => {
      const t = await start({ heartbeatIntervalMs: '7s', heartbeatMinIntervalMs: '0ms' });
      const run = await newRun(t);
      const timers = new FakeTimers();
      const learner = learnerFor(t, run, { timers, initial: { loss: 2.5 } });
      await learner.start();
      expect(learner.heartbeatsSent).toBe(1);
      expect(learner.heartbeatIntervalS).toBe(7);
      expect(await t.admin.getRun(run.run_id)).toMatchObject({ status: 'running', step: 0, loss: 2.5 });
      // The only timer is the next heartbeat, at the controller's 7 s.
      expect(timers.delays()).toEqual([7000]);

      learner.update({ step: 10, loss: 1.25, samples_per_sec: 300, checkpoint_version: 1 });
      timers.fireAll();
      await eventually(() => learner.heartbeatsSent === 2);
      await eventually(() => timers.delays().length === 1);
      expect(timers.delays()).toEqual([7000]);
      expect(await t.admin.getRun(run.run_id)).toMatchObject({
        step: 10,
        loss: 1.25,
        samples_per_sec: 300,
        checkpoint_version: 1,
      });

      // Nothing changed since the last accepted heartbeat: close() sends none, only finish.
      const ended = await learner.close();
      expect(learner.heartbeatsSent).toBe(2);
      expect(ended).toMatchObject({ status: 'completed', step: 10 });
      expect(timers.pending.size).toBe(0);
    });

    it('after a 429 waits at least Retry-After, and the refused heartbeat changes nothing', async () => {
      const t = await start({ heartbeatIntervalMs: '15s', heartbeatMinIntervalMs: '5s' });
      const run = await newRun(t);
      const timers = new FakeTimers();
      const errors: Error[] = [];
      const learner = learnerFor(t, run, { timers, onError: (e) => errors.push(e) });
      await learner.start();
      learner.update({ step: 5 });
      // Fire the 15 s timer at once: far sooner than the controller's 5 s floor.
      timers.fireAll();
      await eventually(() => timers.delays().length === 1);
      const refusal = errors.at(-1);
      expect(refusal).toBeInstanceOf(ApiError);
      expect((refusal as ApiError).status).toBe(429);
      const retryAfterS = (refusal as ApiError).retryAfterS;
      expect(retryAfterS).toBeGreaterThanOrEqual(1);
      const [delay] = timers.delays();
      expect(delay).toBeGreaterThanOrEqual(retryAfterS! * 1000);
      expect(delay).toBeLessThanOrEqual(retryAfterS! * 1000 * 1.1 + 100);
      expect(learner.heartbeatsSent).toBe(1);
      expect((await t.admin.getRun(run.run_id)).step).toBe(0);

      // Retried again too soon: refused again, and again not before Retry-After.
      timers.fireAll();
      await eventually(() => errors.length === 2 && timers.delays().length === 1);
      expect(timers.delays()[0]).toBeGreaterThanOrEqual(1000);

      // close(): the state changed, so a final heartbeat goes (waiting out the 429 on the
      // learner's timers, here fired at once: refused again), then finish.
      timers.auto();
      const ended = await learner.close({ status: 'failed', error: 'test over' });
      expect(ended).toMatchObject({ status: 'failed' });
      expect(timers.pending.size).toBe(0);
    });

    it('backs off with growing, jittered delays while the controller answers 5xx', async () => {
      const t = await start();
      const run = await newRun(t);
      let failing = true;
      let heartbeats = 0;
      // A real HTTP front that answers 503 for heartbeats while `failing`, else forwards.
      const front: Server = createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => {
          body += c.toString();
        });
        req.on('end', () => {
          if (req.url?.endsWith('/heartbeat')) heartbeats++;
          if (failing && req.url?.endsWith('/heartbeat')) {
            res.writeHead(503, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: { code: 'UNAVAILABLE', message: 'down for a test' } }));
            return;
          }
          fetch(t.ctl.url + req.url, {
            method: req.method ?? 'GET',
            headers: req.headers as Record<string, string>,
            ...(body ? { body } : {}),
          })
            .then(async (r) => {
              res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain' });
              res.end(await r.text());
            })
            .catch(() => res.destroy());
        });
      });
      await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
      try {
        const url = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
        const timers = new FakeTimers();
        const learner = learnerFor(t, run, { controllerUrl: url, timers, commandWaitS: 1 });
        // A 5xx is no reason to stop training: start() resolves and the timer retries.
        await learner.start();
        expect(learner.heartbeatsSent).toBe(0);
        const heartbeatDelays = (): number[] => timers.delays();
        const seen: number[] = [];
        for (let i = 0; i < 4; i++) {
          await eventually(() => heartbeatDelays().length === 1);
          seen.push(heartbeatDelays()[0]!);
          const before = heartbeats;
          timers.fireAll();
          await eventually(() => heartbeats > before);
        }
        // Equal jitter with random() = 0.5: 3/4 of 500 ms, doubling.
        expect(seen.slice(0, 3)).toEqual([375, 750, 1500]);
        failing = false;
        await eventually(() => heartbeatDelays().length === 1);
        timers.fireAll();
        await eventually(() => learner.heartbeatsSent === 1);
        await eventually(() => timers.delays().includes(15_000));
        timers.auto();
        await learner.close();
        expect((await t.admin.getRun(run.run_id)).status).toBe('completed');
      } finally {
        front.closeAllConnections();
        await new Promise((r) => front.close(r));
      }
    });

    it('start() rejects a token that is not the run’s, and leaves nothing running', async () => {
      const t = await start();
      const run = await newRun(t);
      const other = await newRun(t);
      const timers = new FakeTimers();
      for (const token of ['rp_not_a_token', other.token]) {
        const learner = learnerFor(t, { run_id: run.run_id, token }, { timers });
        const err = await learner.start().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ApiError);
        expect([401, 403]).toContain((err as ApiError).status);
        expect(await learner.close()).toBeNull();
      }
      expect(timers.requested).toEqual([]);
      expect((await t.admin.getRun(run.run_id)).status).toBe('queued');
    });
  });

  describe('commands', () => {
    it('acknowledges a command only after its handler returns', async () => {
      const t = await start({ heartbeatMinIntervalMs: '0ms' });
      const run = await newRun(t);
      const timers = new FakeTimers();
      const gate = deferred();
      const tuned: number[] = [];
      const learner = learnerFor(t, run, { timers }).onTune(async (p) => {
        tuned.push(p.learning_rate ?? Number.NaN);
        await gate.promise;
      });
      await learner.start();
      const tune = envelope('tune', { learning_rate: 0.003 });
      expect((await t.admin.sendCommand(run.run_id, tune)).id).toBe(tune.id);

      await eventually(() => tuned.length === 1);
      expect(learner.hyperparameters).toEqual({ learning_rate: 0.003 });
      expect(learner.queuedCommands).toEqual([tune.id]);
      // The handler is still running: delivered, not acknowledged, and reported as queued.
      const [held] = (await t.admin.listCommands(run.run_id)).commands;
      expect(held).toMatchObject({ id: tune.id, acknowledged_at: null });
      expect(held?.delivered_at).not.toBeNull();
      timers.fireAll();
      await eventually(() => learner.heartbeatsSent === 2);
      expect((await t.admin.getRun(run.run_id)).queued_commands).toEqual([tune.id]);

      gate.resolve();
      await eventually(async () => {
        const [c] = (await t.admin.listCommands(run.run_id)).commands;
        return c?.acknowledged_at ? c : undefined;
      });
      expect(learner.queuedCommands).toEqual([]);
      expect(tuned).toEqual([0.003]);
      timers.auto();
      await learner.close();
    });

    it('pause stops the trainer until resume; heartbeats report paused meanwhile', async () => {
      const t = await start({ heartbeatMinIntervalMs: '0ms' });
      const run = await newRun(t);
      const timers = new FakeTimers();
      const seen: string[] = [];
      const learner = learnerFor(t, run, { timers })
        .onPause(() => {
          seen.push('pause');
        })
        .onResume(() => {
          seen.push('resume');
        });
      await learner.start();
      await t.admin.sendCommand(run.run_id, envelope('pause'));
      await eventually(() => learner.paused && seen.length === 1);
      expect(learner.current.status).toBe('paused');
      let resumed = false;
      const waiting = learner.waitWhilePaused().then(() => {
        resumed = true;
      });
      await eventually(async () => (await t.admin.getRun(run.run_id)).status === 'paused');
      timers.fireAll();
      await eventually(() => learner.heartbeatsSent === 2);
      expect(await t.admin.getRun(run.run_id)).toMatchObject({ status: 'paused' });
      expect(resumed).toBe(false);

      await t.admin.sendCommand(run.run_id, envelope('resume'));
      await waiting;
      expect(seen).toEqual(['pause', 'resume']);
      expect(learner.current.status).toBe('running');
      await eventually(async () => (await t.admin.getRun(run.run_id)).status === 'running');
      timers.auto();
      await learner.close();
    });

    it('runs the handler of a redelivered command once, and acknowledges it again', async () => {
      const t = await start({ commandVisibilityTimeoutMs: '200ms', heartbeatMinIntervalMs: '0ms' });
      const run = await newRun(t);
      // The first ack is lost (a refusal the learner does not retry): the controller delivers
      // the command again once its visibility timeout passes.
      let acks = 0;
      class LosingFirstAck extends RunplaneClient {
        override ackCommand(id: string, commandId: string, signal?: AbortSignal) {
          acks++;
          if (acks === 1) return Promise.reject(new ApiError(400, 'LOST', 'first ack lost on purpose'));
          return super.ackCommand(id, commandId, signal);
        }
      }
      const terminations: string[] = [];
      const timers = new FakeTimers();
      const learner = learnerFor(t, run, {
        timers,
        client: new LosingFirstAck(t.ctl.url, run.token),
        commandWaitS: 1,
      }).onTerminate((p) => {
        terminations.push(p.reason);
      });
      await learner.start();
      const cmd = envelope('terminate', { reason: 'enough', final_checkpoint: true });
      await t.admin.sendCommand(run.run_id, cmd);

      const acked = await eventually(async () => {
        const [c] = (await t.admin.listCommands(run.run_id)).commands;
        return c?.acknowledged_at ? c : undefined;
      });
      expect(acked.delivery_count).toBe(2);
      expect(acks).toBe(2);
      expect(terminations).toEqual(['enough']);
      expect(learner.shouldStop).toBe(true);
      expect(learner.terminateRequest).toEqual({ reason: 'enough', final_checkpoint: true });
      expect(learner.current.status).toBe('terminating');

      learner.update({ checkpoint_version: 1 });
      timers.auto();
      const ended = await learner.close();
      expect(ended).toMatchObject({ status: 'terminated', checkpoint_version: 1 });
    });

    it('a handler that throws leaves the command unacknowledged, and it is retried', async () => {
      const t = await start({ commandVisibilityTimeoutMs: '200ms' });
      const run = await newRun(t);
      let calls = 0;
      const errors: string[] = [];
      const timers = new FakeTimers();
      const learner = learnerFor(t, run, {
        timers,
        commandWaitS: 1,
        onError: (e, during) => errors.push(`${during}: ${e.message}`),
      }).onTune(() => {
        calls++;
        if (calls === 1) throw new Error('not ready yet');
      });
      await learner.start();
      await t.admin.sendCommand(run.run_id, envelope('tune', { entropy_coef: 0.01 }));
      const acked = await eventually(async () => {
        const [c] = (await t.admin.listCommands(run.run_id)).commands;
        return c?.acknowledged_at ? c : undefined;
      });
      expect(calls).toBe(2);
      expect(acked.delivery_count).toBe(2);
      expect(errors).toContain('tune handler: not ready yet');
      timers.auto();
      await learner.close();
    });

    it('close() may be called from inside a handler', async () => {
      const t = await start({ heartbeatMinIntervalMs: '0ms' });
      const run = await newRun(t);
      const timers = new FakeTimers();
      timers.auto();
      let closed: Promise<unknown> | null = null;
      const learner = learnerFor(t, run, { timers }).onTerminate(async () => {
        closed = learner.close();
        await closed;
      });
      await learner.start();
      await t.admin.sendCommand(run.run_id, envelope('terminate', { reason: 'from the handler' }));
      await eventually(() => closed !== null);
      expect(await closed).toMatchObject({ status: 'terminated' });
      await eventually(async () => (await t.admin.listCommands(run.run_id)).commands[0]?.acknowledged_at);
    });
  });

  describe('metrics and close', () => {
    it('reports metrics, and close() sends the last state and finishes the run once', async () => {
      const t = await start({ heartbeatMinIntervalMs: '0ms' });
      const run = await newRun(t);
      const timers = new FakeTimers();
      const learner = learnerFor(t, run, { timers });
      await learner.start();
      expect(await learner.reportMetrics(1, { loss: 0.9, val_accuracy: 0.5 })).toBe(2);
      expect(await learner.reportMetrics(2, { loss: 0.7, val_accuracy: 0.6 })).toBe(2);
      learner.update({ step: 2, loss: 0.7, notes: 'almost there' });

      const ended = await learner.close();
      expect(ended).toMatchObject({ status: 'completed', step: 2, loss: 0.7, notes: 'almost there' });
      expect(await learner.close()).toBe(ended); // idempotent
      expect(learner.heartbeatsSent).toBe(2);
      expect(timers.pending.size).toBe(0);
      const m = await t.admin.getMetrics(run.run_id, { names: 'val_accuracy' });
      expect(m.series.val_accuracy?.map((p) => [p.step, p.value])).toEqual([
        [1, 0.5],
        [2, 0.6],
      ]);
      expect((await t.admin.getRun(run.run_id)).summary).toMatchObject({ val_accuracy: 0.6 });
    });
  });

  describe('the TypeScript trainer example', () => {
    it('trains, obeys tune and terminate with a final checkpoint, and its process exits by itself', async () => {
      const t = await start({ heartbeatIntervalMs: '1s', heartbeatMinIntervalMs: '100ms' });
      const run = await newRun(t);
      const dir = mkdtempSync(join(tmpdir(), 'runplane-ts-trainer-'));
      // A separate Node process: if close() left a timer or a request behind, it would never
      // exit on its own and this test would fail.
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'examples/ts-trainer/train.ts',
          '--epochs',
          '100000',
          '--samples',
          '500',
          '--step-delay-ms',
          '2',
          '--checkpoint-dir',
          dir,
        ],
        {
          cwd: REPO_ROOT,
          env: {
            ...process.env,
            RUNPLANE_CONTROLLER_URL: t.ctl.url,
            RUNPLANE_RUN_ID: run.run_id,
            RUNPLANE_RUN_TOKEN: run.token,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => {
        out += c;
      });
      child.stderr.setEncoding('utf8').on('data', (c: string) => {
        out += c;
      });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      try {
        await eventually(() => /epoch 2 /.test(out), 60_000);
        await t.admin.sendCommand(run.run_id, envelope('tune', { learning_rate: 0.05 }));
        await eventually(() => /lr 0\.05\n/.test(out), 60_000);
        await t.admin.sendCommand(
          run.run_id,
          envelope('terminate', { reason: 'test', final_checkpoint: true }),
        );
        expect(await exited).toBe(0);
      } finally {
        child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      }
      expect(out).toContain('tune: learning_rate=0.05');
      expect(out).toContain('terminate requested: test');
      expect(out).toMatch(/final checkpoint 1: /);
      const ended = await t.admin.getRun(run.run_id);
      expect(ended).toMatchObject({ status: 'terminated', checkpoint_version: 1 });
      expect(ended.summary).toMatchObject({ learning_rate: 0.05 });
      expect(ended.summary.val_accuracy).toBeGreaterThan(0.5);
      const trail = (await t.admin.listCommands(run.run_id)).commands;
      expect(trail.map((c) => [c.type, c.acknowledged_at !== null])).toEqual([
        ['tune', true],
        ['terminate', true],
      ]);
    });
  });
});
