/**
 * `runplane sweep` as a user runs it, against `runplane up` with its embedded worker: start a
 * sweep over the TypeScript example trainer and follow its progress bar to the end; status;
 * analyze (tables and SVG plots); export as CSV and JSON; compare two sweeps; stop and resume;
 * a bad sweep file's field errors. Also: every example sweep file validates.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSweepText, validateSweepFile } from '../../src/sweeps/sweep-file.js';
import { cleanup, REPO_ROOT, runCli, startUp, tempDir } from '../helpers/processes.js';

afterEach(async () => {
  await cleanup();
});

const EXAMPLES = join(REPO_ROOT, 'examples', 'sweeps');

function sweepFile(dir: string, name: string, maxTrials: number, epochs: number): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
objective: {metric: val_loss, direction: minimize}
parameters:
  lr: {type: float, low: 0.01, high: 1.0, log: true}
  batch_size: {type: categorical, choices: [64, 256]}
optimizer: {type: random, seed: 5}
max_trials: ${maxTrials}
max_parallel_jobs: 2
train:
  command: [${JSON.stringify(process.execPath)}, --import, tsx, examples/ts-trainer/train.ts, --lr, "{lr}",
            --batch-size, "{batch_size}", --epochs, "${epochs}", --samples, "400", --checkpoint-dir, "{checkpoint_dir}"]
  cwd: .
`,
  );
  return file;
}

describe('every example sweep file', () => {
  it('is a valid sweep file', () => {
    const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const f of files) {
      const parsed = parseSweepText(readFileSync(join(EXAMPLES, f), 'utf8'));
      expect(parsed.ok, f).toBe(true);
      if (!parsed.ok) continue;
      const checked = validateSweepFile(parsed.raw);
      expect(checked.ok ? [] : checked.errors, f).toEqual([]);
    }
  });
});

describe('runplane sweep', () => {
  it('start follows a sweep to the end; status, analyze, export and compare show it', async () => {
    const up = await startUp({ workers: 1 });
    const cli = (args: string[], timeoutMs = 120_000) =>
      runCli(
        ['--url', up.url, '--token', up.adminToken, 'sweep', ...args],
        {},
        { cwd: REPO_ROOT, timeoutMs },
      );
    const dir = tempDir();

    const started = await cli(['start', sweepFile(dir, 'cli-a', 4, 3)], 240_000);
    expect(started.code, started.stderr).toBe(0);
    // The progress bar: done / running / failed and the best so far, up to the end.
    expect(started.stderr).toMatch(
      /\[#+\.*\] \d+\/4 done \d+, running \d+, pending \d+, failed 0, best val_loss=/,
    );
    expect(started.stderr).toMatch(
      /\[#{30}\] 4\/4 done 4, running 0, pending 0, failed 0, best val_loss=\S+ \(trial \d\)\s+\[completed\]/,
    );
    const id = /sweep\s+(swp_\S+)/.exec(started.stdout)?.[1];
    expect(id, started.stdout).toBeDefined();
    if (!id) return;
    expect(started.stdout).toMatch(/status\s+completed/);

    const status = await cli(['status', id, '--json']);
    expect(status.code, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout) as { trials: Array<{ status: string }>; best: { number: number } };
    expect(s.trials.map((t) => t.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED']);

    const out = join(dir, 'plots');
    const analyzed = await cli(['analyze', id, '--top', '3', '--out', out]);
    expect(analyzed.code, analyzed.stderr).toBe(0);
    expect(analyzed.stdout).toMatch(new RegExp(`best: trial ${s.best.number}`));
    expect(analyzed.stdout).toMatch(/importance \(PED-ANOVA/);
    expect(analyzed.stdout).toMatch(/significance: trial \d+ vs trial \d+: welch-t/);
    for (const f of ['history.svg', 'parallel_coordinates.svg', 'importance.svg']) {
      expect(existsSync(join(out, f)), f).toBe(true);
      expect(readFileSync(join(out, f), 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
    }

    const csv = await cli(['export', id, '--format', 'csv']);
    expect(csv.code).toBe(0);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toBe(
      'number,status,lr,batch_size,val_loss,cost,attempt,origin,parent_number,run_id,created_at,ended_at',
    );
    expect(lines).toHaveLength(5);
    const json = await cli(['export', id, '--format', 'json', '--out', join(dir, 'export.json')]);
    expect(json.code).toBe(0);
    expect(
      (JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8')) as { trials: unknown[] }).trials,
    ).toHaveLength(4);

    const b = await cli(['start', sweepFile(dir, 'cli-b', 2, 2), '--detach']);
    expect(b.code).toBe(0);
    const idB = b.stdout.trim();
    const compared = await cli(['compare', id, idB, '--json']);
    expect(compared.code).toBe(0);
    const c = JSON.parse(compared.stdout) as { a: { completed: number }; same_metric: boolean };
    expect(c.a.completed).toBe(4);
    expect(c.same_metric).toBe(true);

    const stopped = await cli(['stop', idB, '--reason', 'enough']);
    expect(stopped.stdout).toMatch(new RegExp(`${idB} (stopping|stopped)`));
    const list = await cli(['list', '--json']);
    expect((JSON.parse(list.stdout) as { sweeps: unknown[] }).sweeps).toHaveLength(2);
  }, 300_000);

  it('a bad sweep file is refused with its field errors (exit 6)', async () => {
    const up = await startUp({ workers: 0 });
    const file = join(tempDir(), 'bad.yaml');
    writeFileSync(
      file,
      'name: bad\nobjective: {metric: loss}\nparameters: {lr: {type: float, low: 1, high: 0}}\nmax_trials: 2\ntrain: {command: [x]}\n',
    );
    const r = await runCli(['--url', up.url, '--token', up.adminToken, 'sweep', 'start', file]);
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/parameters\.lr\.high: high must be greater than low \(OUT_OF_RANGE\)/);
  }, 120_000);
});
