/**
 * The stdlib-only Python learner client (clients/python/runplane_client.py) and the PyTorch
 * digits example, run with /usr/bin/python3 against a real `runplane up`: heartbeats, metrics,
 * tune, pause/resume and terminate delivered by long-poll and acknowledged after the handler.
 *
 * SQLite always, Postgres when reachable. Missing python3 (or torch/sklearn for the example)
 * skips with one line, unless RUNPLANE_TEST_REQUIRE names "python".
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunplaneClient } from '../../src/client/client.js';
import type { CommandEnvelope } from '../../src/runs/schemas.js';
import { Store } from '../../src/store/database.js';
import { eventually } from '../helpers/controller.js';
import {
  cleanup,
  MARKER,
  MARKER_ENV,
  REPO_ROOT,
  startUp,
  tempDir,
  type UpProcess,
} from '../helpers/processes.js';
import { PG_URL, serviceAvailable } from '../helpers/services.js';
import { dropSchema } from '../helpers/store.js';

const PYTHON = '/usr/bin/python3';
const required = (process.env.RUNPLANE_TEST_REQUIRE ?? '').split(',').includes('python');

function pythonHas(modules: string): boolean {
  if (!existsSync(PYTHON)) return false;
  try {
    execFileSync(PYTHON, ['-c', `import ${modules}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function available(what: string, modules: string): boolean {
  const ok = pythonHas(modules);
  if (!ok) {
    if (required) throw new Error(`${what} is required (RUNPLANE_TEST_REQUIRE=python) but missing`);
    console.warn(`[skip] ${what} is missing; its suite is skipped`);
  }
  return ok;
}

const pythonOk = available(`${PYTHON}`, 'json, threading, http.client');
const torchOk = pythonOk && available('python3-torch / python3-sklearn', 'torch, sklearn');

/** A Python process whose output the test reads line by line. */
class PythonProcess {
  readonly lines: string[] = [];
  private partial = '';
  readonly exited: Promise<number | null>;

  constructor(
    readonly proc: ChildProcess,
    private readonly label: string,
  ) {
    const onData = (c: string) => {
      this.partial += c;
      const parts = this.partial.split('\n');
      this.partial = parts.pop() ?? '';
      this.lines.push(...parts);
    };
    proc.stdout?.setEncoding('utf8').on('data', onData);
    proc.stderr?.setEncoding('utf8').on('data', onData);
    this.exited = new Promise((r) => proc.once('exit', (code) => r(code)));
  }

  static start(args: string[], env: Record<string, string>, label: string): PythonProcess {
    const proc = spawn(PYTHON, ['-u', ...args], {
      cwd: tempDir('runplane-e2e-py-'),
      // The marker lets cleanup() find it; nothing RUNPLANE_* of the runner leaks in.
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        [MARKER_ENV]: MARKER,
        // No __pycache__ next to the client in the checkout.
        PYTHONDONTWRITEBYTECODE: '1',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new PythonProcess(proc, label);
  }

  /** The first line matching `pattern`, once it has been printed. */
  async line(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
    try {
      return await eventually(() => {
        for (const l of this.lines) {
          const m = pattern.exec(l);
          if (m) return m;
        }
        return undefined;
      }, timeoutMs);
    } catch {
      throw new Error(`${this.label}: no line matching ${pattern}; output:\n${this.output()}`);
    }
  }

  /** The JSON events the script printed, by kind. */
  events(kind: string): Array<Record<string, unknown>> {
    return this.lines
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.event === kind);
  }

  output(): string {
    return [...this.lines, this.partial].join('\n');
  }
}

function envelope(type: CommandEnvelope['type'], payload: Record<string, unknown> = {}): CommandEnvelope {
  return {
    id: crypto.randomUUID(),
    type,
    issued_at: new Date().toISOString(),
    actor: { type: 'operator', id: 'python-e2e' },
    payload,
  };
}

const pgOk = pythonOk && (await serviceAvailable('postgres'));

/** A small trainer using the client; it prints JSON events the test waits for. */
const SCRIPT = `
import json, sys, threading, time
sys.path.insert(0, ${JSON.stringify(join(REPO_ROOT, 'clients', 'python'))})
from runplane_client import ApiError, Learner

lock = threading.Lock()
def emit(kind, **kw):
    # Handlers emit from the client's command thread: one write per line, never interleaved.
    with lock:
        sys.stdout.write(json.dumps({"event": kind, **kw}) + "\\n")
        sys.stdout.flush()

learner = Learner(command_wait_s=2, seed=1, on_error=lambda e: emit("error", message=str(e)))
tunes, terminations = [], []
learner.on_tune(lambda p: (tunes.append(p), emit("tune", payload=p)))
learner.on_terminate(lambda p: (terminations.append(p), emit("terminate", payload=p)))

# The first acknowledgement of the tune is lost (refused, not retried): the controller
# delivers the command again after its visibility timeout, and the client must acknowledge
# it without running the handler twice.
request = learner._request
lost = []
def losing_first_tune_ack(method, path, body, timeout=None, poll=False):
    if path.endswith("/ack") and tunes and not lost:
        lost.append(path)
        raise ApiError(400, "LOST", "first ack lost on purpose")
    return request(method, path, body, timeout, poll)
learner._request = losing_first_tune_ack

with learner:
    emit("started", heartbeats=learner.heartbeats_sent)
    step = 0
    while not learner.should_stop:
        if learner.paused:
            emit("paused", step=step)
            learner.wait_while_paused()
            emit("resumed", step=step)
            continue
        step += 1
        learner.update(step=step, loss=1.0 / step, samples_per_sec=1000.0)
        if step % 20 == 0:
            learner.report_metrics(step, {"loss": 1.0 / step, "val_accuracy": min(1.0, step / 1000.0)})
        time.sleep(0.005)
    learner.update(checkpoint_version=1, notes="final checkpoint written")
emit("done", step=step, tunes=tunes, terminations=terminations, heartbeats=learner.heartbeats_sent,
     lost=len(lost), hyperparameters=learner.hyperparameters)
`;

/** The whole file once per store: `runplane up` on SQLite, and on a fresh Postgres schema. */
function suite(dialect: 'sqlite' | 'postgres') {
  let up: UpProcess;
  let admin: RunplaneClient;
  let schema: string | null = null;

  beforeAll(async () => {
    if (!pythonOk) return;
    if (dialect === 'postgres') schema = `e2e_py_${process.pid}_${Date.now().toString(36)}`;
    up = await startUp({
      workers: 0,
      ...(schema ? { databaseUrl: `${PG_URL}?schema=${schema}` } : {}),
      env: {
        RUNPLANE_HEARTBEAT_INTERVAL: '1s',
        RUNPLANE_HEARTBEAT_MIN_INTERVAL: '200ms',
        RUNPLANE_COMMAND_VISIBILITY_TIMEOUT: '1s',
      },
    });
    admin = new RunplaneClient(up.url, up.adminToken);
  });

  afterAll(async () => {
    await up?.stop();
    if (schema) await dropSchema(schema);
  });

  const learnerEnv = (run: { run_id: string; token: string }) => ({
    RUNPLANE_CONTROLLER_URL: up.url,
    RUNPLANE_RUN_ID: run.run_id,
    RUNPLANE_RUN_TOKEN: run.token,
  });

  describe.skipIf(!pythonOk)('python learner client', { timeout: 180_000 }, () => {
    it('heartbeats, reports metrics, obeys tune, pause/resume and terminate, and finishes the run', async () => {
      const run = await admin.createRun({ name: 'python-client' });
      const script = join(tempDir('runplane-e2e-pyscript-'), 'learner.py');
      writeFileSync(script, SCRIPT);
      const py = PythonProcess.start([script], learnerEnv(run), 'python client');

      await py.line(/"event": "started"/);
      await eventually(async () => {
        const r = await admin.getRun(run.run_id);
        return r.status === 'running' && (r.step ?? 0) > 0;
      });

      const tune = envelope('tune', { learning_rate: 0.01, notes: 'slower' });
      await admin.sendCommand(run.run_id, tune);
      await py.line(/"event": "tune"/);
      // Its first ack was lost: delivered again after the visibility timeout, acknowledged
      // then, and the handler ran once (tunes below).
      const tuned = await eventually(async () => {
        const c = (await admin.listCommands(run.run_id)).commands.find((x) => x.id === tune.id);
        return c?.acknowledged_at ? c : undefined;
      });
      expect(tuned.delivery_count).toBe(2);

      await admin.sendCommand(run.run_id, envelope('pause'));
      const paused = Number((await py.line(/"event": "paused", "step": (\d+)/))[1]);
      await eventually(async () => (await admin.getRun(run.run_id)).status === 'paused');
      await admin.sendCommand(run.run_id, envelope('resume'));
      const resumed = Number((await py.line(/"event": "resumed", "step": (\d+)/))[1]);
      expect(resumed).toBe(paused); // no step while paused

      const terminate = envelope('terminate', { reason: 'e2e over', final_checkpoint: true });
      await admin.sendCommand(run.run_id, terminate);
      expect(await py.exited, py.output()).toBe(0);

      const [done] = py.events('done');
      expect(done).toMatchObject({
        tunes: [{ learning_rate: 0.01, notes: 'slower' }],
        terminations: [{ reason: 'e2e over', final_checkpoint: true }],
        lost: 1,
        hyperparameters: { learning_rate: 0.01 },
      });
      expect(done?.heartbeats as number).toBeGreaterThan(1);

      const trail = (await admin.listCommands(run.run_id)).commands;
      expect(trail.map((c) => c.type)).toEqual(['tune', 'pause', 'resume', 'terminate']);
      for (const c of trail) expect(c.acknowledged_at, `${c.type} acknowledged`).not.toBeNull();

      const ended = await admin.getRun(run.run_id);
      expect(ended).toMatchObject({
        status: 'terminated',
        checkpoint_version: 1,
        notes: 'final checkpoint written',
        queued_commands: [],
      });
      expect(ended.step).toBe(done?.step);
      const metrics = await admin.getMetrics(run.run_id, { names: 'loss,val_accuracy' });
      expect(metrics.series.val_accuracy?.length ?? 0).toBeGreaterThan(0);
      expect(metrics.series.loss?.length ?? 0).toBeGreaterThan(0);
    });

    it('refuses to start with a token of another run, and completes a run it owns', async () => {
      const run = await admin.createRun({ name: 'python-errors' });
      const other = await admin.createRun({ name: 'python-other' });
      const script = join(tempDir('runplane-e2e-pyscript-'), 'errors.py');
      writeFileSync(
        script,
        `
import json, os, sys
sys.path.insert(0, ${JSON.stringify(join(REPO_ROOT, 'clients', 'python'))})
from runplane_client import ApiError, Learner
try:
    Learner(token=os.environ["OTHER_TOKEN"]).start()
    print(json.dumps({"refused": None}))
except ApiError as e:
    print(json.dumps({"refused": e.status, "code": e.code}))
learner = Learner()
with learner:
    learner.update(step=3, loss=0.5)
    accepted = learner.report_metrics(3, {"loss": 0.5, "reward": 12.0})
print(json.dumps({"accepted": accepted, "threads": [t.name for t in __import__("threading").enumerate()]}))
`,
      );
      // Launched in a trace (as a job of runplane is): its requests continue it.
      const traceId = `${process.pid.toString(16).padStart(8, '0')}${Date.now().toString(16)}`.padEnd(
        32,
        'a',
      );
      const py = PythonProcess.start(
        [script],
        { ...learnerEnv(run), OTHER_TOKEN: other.token, TRACEPARENT: `00-${traceId}-00f067aa0ba902b7-01` },
        'errors',
      );
      expect(await py.exited, py.output()).toBe(0);
      const store = await Store.open(
        schema ? `${PG_URL}?schema=${schema}` : `sqlite:${join(up.dataDir, 'runplane.db')}`,
      );
      try {
        const statuses = await store.db
          .selectFrom('events')
          .select(['traceparent', 'payload'])
          .where('entity_id', '=', run.run_id)
          .where('type', '=', 'run.status')
          .execute();
        expect(statuses.length).toBeGreaterThan(0);
        // The admin created the run outside any trace; everything the learner caused is in its trace.
        const byCause = statuses.map((e) => [
          (JSON.parse(e.payload) as { cause: string }).cause,
          e.traceparent?.split('-')[1] ?? null,
        ]);
        expect(byCause[0]).toEqual(['create', null]);
        expect(byCause.slice(1).map(([, t]) => t)).toEqual(byCause.slice(1).map(() => traceId));
        expect(byCause.map(([c]) => c)).toContain('heartbeat');
      } finally {
        await store.close();
      }
      const [refusal, result] = py.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      expect([401, 403]).toContain(refusal.refused);
      // Both client threads are gone after close(): only the main thread is left.
      expect(result).toEqual({ accepted: 2, threads: ['MainThread'] });
      expect(await admin.getRun(run.run_id)).toMatchObject({ status: 'completed', step: 3, loss: 0.5 });
      expect((await admin.getRun(other.run_id)).status).toBe('queued');
    });
  });

  describe.skipIf(!torchOk)('examples/digits/train.py (PyTorch)', { timeout: 240_000 }, () => {
    it('trains an epoch, pauses and resumes, takes a tune, and terminates with a final checkpoint', async () => {
      const run = await admin.createRun({ name: 'digits', config: { lr: 0.05 } });
      const ckpt = join(tempDir('runplane-e2e-ckpt-'), 'ckpt');
      const py = PythonProcess.start(
        [
          join(REPO_ROOT, 'examples', 'digits', 'train.py'),
          '--epochs',
          '1000',
          '--lr',
          '0.05',
          '--checkpoint-every',
          '0',
          '--step-delay',
          '0.005',
          '--checkpoint-dir',
          ckpt,
        ],
        learnerEnv(run),
        'digits',
      );
      await py.line(/^epoch 1 step \d+ /, 120_000);
      await eventually(async () => ((await admin.getRun(run.run_id)).summary.val_accuracy ?? 0) > 0);

      await admin.sendCommand(run.run_id, envelope('pause'));
      const paused = Number((await py.line(/^paused at step (\d+)/))[1]);
      await eventually(async () => (await admin.getRun(run.run_id)).status === 'paused');
      await admin.sendCommand(run.run_id, envelope('resume'));
      expect(Number((await py.line(/^resumed at step (\d+)/))[1])).toBe(paused);

      await admin.sendCommand(run.run_id, envelope('tune', { learning_rate: 0.01 }));
      await py.line(/^tune: learning_rate=0.01/);
      await py.line(/^epoch \d+ .* lr 0\.01$/, 120_000);

      await admin.sendCommand(
        run.run_id,
        envelope('terminate', { reason: 'enough', final_checkpoint: true }),
      );
      expect(await py.exited, py.output()).toBe(0);
      await py.line(/^final checkpoint 1: /);
      expect(existsSync(join(ckpt, 'ckpt-0001.pt'))).toBe(true);

      const ended = await admin.getRun(run.run_id);
      expect(ended).toMatchObject({ status: 'terminated', checkpoint_version: 1 });
      expect(ended.summary).toMatchObject({ learning_rate: 0.01 });
      expect(ended.summary.val_accuracy).toBeGreaterThan(0.5);
      const metrics = await admin.getMetrics(run.run_id, { names: 'loss,val_loss,val_accuracy' });
      for (const name of ['loss', 'val_loss', 'val_accuracy'])
        expect(metrics.series[name]?.length ?? 0, name).toBeGreaterThan(1);
      const trail = (await admin.listCommands(run.run_id)).commands;
      expect(trail.every((c) => c.acknowledged_at !== null)).toBe(true);
    });
  });
}

afterAll(async () => {
  await cleanup();
});

describe('sqlite', () => suite('sqlite'));
describe.skipIf(!pgOk)('postgres', () => suite('postgres'));
