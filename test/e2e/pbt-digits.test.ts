/**
 * The PBT example end to end: examples/sweeps/digits-pbt.yaml (made small) on `runplane up`
 * with its embedded worker and Debian's PyTorch. The worse member is stopped and a new trial of
 * its slot continues from the better member's checkpoint (it reports from a later epoch on),
 * with its lineage recorded. Skipped where /usr/bin/python3 has no torch or sklearn.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { RunplaneClient } from '../../src/client/client.js';
import { eventually } from '../helpers/controller.js';
import { cleanup, REPO_ROOT, startUp } from '../helpers/processes.js';

const PYTHON = '/usr/bin/python3';
let torchOk = false;
try {
  execFileSync(PYTHON, ['-c', 'import torch, sklearn'], { stdio: 'ignore' });
  torchOk = true;
} catch {
  console.warn('[skip] /usr/bin/python3 has no torch/sklearn; the PBT digits example is skipped');
}

afterEach(async () => {
  await cleanup();
});

describe.skipIf(!torchOk)('the digits PBT example', () => {
  it('exploits: a stopped member continues from the better member’s checkpoint', async () => {
    const up = await startUp({ workers: 1 });
    const client = new RunplaneClient(up.url, up.adminToken);
    const file = parseYaml(readFileSync(join(REPO_ROOT, 'examples/sweeps/digits-pbt.yaml'), 'utf8')) as {
      scheduler: Record<string, unknown>;
      train: { command: string[]; cwd: string };
    } & Record<string, unknown>;
    file.scheduler = { ...file.scheduler, population_size: 2, perturbation_interval: 2, max_t: 6 };
    file.max_parallel_jobs = 2;
    file.stop_grace = '5s';
    // Slow enough that the controller's 1 s rounds see each perturbation point, with room for a
    // loaded machine (at 1.5 s a CI run once missed one).
    file.train.command = [PYTHON, ...file.train.command.slice(1), '--epoch-delay', '2.5'];
    file.train.cwd = REPO_ROOT;
    const sweep = await client.createSweep(file);
    const done = await eventually(
      async () => {
        const s = await client.getSweep(sweep.sweep_id);
        return ['completed', 'failed'].includes(s.status) ? s : undefined;
      },
      240_000,
      500,
    );
    expect(done.status).toBe('completed');
    const { trials } = await client.sweepTrials(sweep.sweep_id);
    const children = trials.filter((t) => t.origin === 'pbt');

    expect(children.length).toBeGreaterThan(0);
    for (const c of children) {
      const parent = trials.find((t) => t.number === c.parent_number);
      expect(parent, `trial ${c.number}`).toBeDefined();
      expect(c.start_step).toBeGreaterThanOrEqual(2);
      // It resumed: its first report is the inherited model at the checkpoint's epoch.
      const m = await client.getMetrics(c.run_id, { names: 'val_loss' });
      expect(m.series.val_loss?.[0]?.step, `trial ${c.number}`).toBe(c.start_step);
      expect(c.start_step).toBeLessThan(6);
      expect(['COMPLETED', 'PRUNED']).toContain(c.status);
    }
    expect(trials.filter((t) => t.status === 'PRUNED').length).toBe(children.length);
    const members = new Set(trials.map((t) => t.member));
    expect(members).toEqual(new Set([0, 1]));
  }, 300_000);
});
