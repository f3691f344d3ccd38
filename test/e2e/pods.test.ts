/**
 * The pod evaluator with real processes: `runplane league start` drives a league whose epochs
 * run the example league simulator as jobs on a real worker; and a storm of concurrent
 * dispatches through a kill -9 of `runplane up` and its restart never has two epochs of a pod
 * in flight at once, and never simulates a converged pod. SQLite always, Postgres when reachable.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, RunplaneClient } from '../../src/client/client.js';
import type { EpochView } from '../../src/pods/schemas.js';
import { eventually } from '../helpers/controller.js';
import { cleanup, cliAs, freePort, REPO_ROOT, startUp, tempDir } from '../helpers/processes.js';
import { PG_URL, serviceAvailable } from '../helpers/services.js';
import { dropSchema } from '../helpers/store.js';

const pgOk = await serviceAvailable('postgres');
const SIMULATOR = join(REPO_ROOT, 'examples', 'league', 'simulate.mjs');

const schemas: string[] = [];
afterEach(async () => {
  await cleanup();
  for (const schema of schemas.splice(0)) await dropSchema(schema);
});

function databaseFor(dialect: 'sqlite' | 'postgres'): string | undefined {
  if (dialect === 'sqlite') return undefined;
  const schema = `e2e_pods_${process.pid}_${Date.now().toString(36)}`;
  schemas.push(schema);
  return `${PG_URL}?schema=${schema}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** No two epochs of a pod overlap, and none starts after the pod stopped. */
function assertSerial(epochs: EpochView[], convergedAt: string | null): void {
  const sorted = [...epochs].sort((a, b) => a.epoch - b.epoch);
  expect(sorted.map((e) => e.epoch)).toEqual(sorted.map((_, i) => i + 1));
  for (let i = 0; i + 1 < sorted.length; i++) {
    const a = sorted[i]!;
    const b = sorted[i + 1]!;
    expect(a.finished_at, `epoch ${a.epoch} must have ended before epoch ${b.epoch} began`).not.toBeNull();
    expect(Date.parse(b.created_at!)).toBeGreaterThanOrEqual(Date.parse(a.finished_at!));
  }
  if (convergedAt)
    for (const e of sorted) expect(Date.parse(e.created_at!)).toBeLessThanOrEqual(Date.parse(convergedAt));
}

function suite(dialect: 'sqlite' | 'postgres') {
  it('runs a league from a file: epochs are simulation jobs that post results until each pod converges', async () => {
    const databaseUrl = databaseFor(dialect);
    const up = await startUp({ workers: 1, ...(databaseUrl ? { databaseUrl } : {}) });
    const dir = tempDir('runplane-e2e-league-');
    const file = join(dir, 'league.yaml');
    writeFileSync(
      file,
      [
        'name: e2e',
        'seed: 11',
        'rounds: 2',
        'matchmaking: round_robin',
        'participants:',
        '  - { id: ace, strength: 3 }',
        '  - { id: king, strength: 2 }',
        '  - { id: queen, strength: 1 }',
        '  - { id: jack, strength: 0 }',
        'pod:',
        '  confidence_target: 0.99',
        '  precision: 0.5',
        '  epoch_size: 50',
        '  max_epochs_per_pod: 20',
        '  simulation:',
        `    command: [node, ${JSON.stringify(SIMULATOR)}]`,
        '    env: { SIM_BATCH: "10" }',
        '',
      ].join('\n'),
    );
    const cli = cliAs(up.url, up.adminToken);
    const r = await cli(['league', 'start', file, '--poll', '200']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/round 1: 1 pods \(0 already done, skipped\)/);
    expect(r.stderr).toMatch(/converged after \d+ games/);
    // Round 2 draws the same four: the converged pod is found again and skipped.
    expect(r.stderr).toMatch(/round 2: 1 pods \(1 already done, skipped\)/);
    expect(r.stdout).toMatch(/RANK\s+PARTICIPANT/);

    const client = new RunplaneClient(up.url, up.adminToken);
    const [pod] = (await client.listPods()).pods;
    expect(pod?.status).toBe('converged');
    expect(pod?.convergence.ranking).toEqual(['ace', 'king', 'queen', 'jack']);
    const epochs = (await client.podEpochs(pod!.pod_id)).epochs;
    assertSerial(epochs, pod!.converged_at);
    // The last epoch stopped the moment the target was met.
    expect(epochs.reduce((s, e) => s + e.games_received, 0)).toBe(pod!.statistics.games_played);
    const board = await client.leaderboard();
    expect(board.participants.map((p) => p.participant)).toEqual(['ace', 'king', 'queen', 'jack']);
    const replays = await client.replays({ participant: 'ace', limit: 5 });
    expect(replays.games[0]?.replay).toMatch(/^replay:\/\//);
    const csv = await cli(['pods', 'export', '--all', '--format', 'csv']);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout.split('\r\n')[0]).toBe('seq,pod_id,at,kind,epoch,games_played,confidence,detail');
    expect(csv.stdout).toMatch(/,converged,/);
    const show = await cli(['pods', 'show', pod!.pod_id]);
    expect(show.stdout).toMatch(/status\s+converged\s+\(confidence_target_met\)/);
  });

  it('never dispatches a pod twice at once, across concurrent requests and a kill -9 restart', async () => {
    const databaseUrl = databaseFor(dialect);
    const port = await freePort();
    const dataDir = tempDir('runplane-e2e-data-');
    const upOpts = {
      port,
      dataDir,
      workers: 1,
      workerTimeout: '3s',
      ...(databaseUrl ? { databaseUrl } : {}),
    };
    let up = await startUp(upOpts);
    const client = new RunplaneClient(up.url, up.adminToken);
    const P = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8'];
    // Near-equal participants: these pods stay busy for many epochs.
    const config = {
      epoch_size: 20,
      max_epochs_per_pod: 1000,
      confidence_target: 0.999,
      simulation: {
        command: [process.execPath, SIMULATOR],
        env: {
          LEAGUE_STRENGTHS: JSON.stringify(Object.fromEntries(P.map((p, i) => [p, i * 0.01]))),
          SIM_GAME_MS: '2',
        },
      },
    };
    const busy = [
      await client.createPod({ participants: P.slice(0, 4), seed: 1, config }),
      await client.createPod({ participants: P.slice(4, 8), seed: 1, config }),
    ];
    // A pod converged before the storm must never get an epoch.
    const done = await client.createPod({ participants: P.slice(0, 4), seed: 2, config });
    for (let i = 0; (await client.getPod(done.pod_id)).status !== 'converged'; i++) {
      expect(i).toBeLessThan(100);
      const games = Array.from({ length: 20 }, (_, k) => ({
        game_id: `pre-${i}-${k}`,
        placements: Object.fromEntries(P.slice(0, 4).map((p, j) => [p, j + 1])),
      }));
      await client.postPodResults(done.pod_id, { games });
    }
    const targets = [...busy.map((p) => p.pod_id), done.pod_id];

    let url = up.url;
    let stop = false;
    const accepted: string[] = [];
    const refused = new Map<string, number>();
    const storm = async (podId: string) => {
      while (!stop) {
        try {
          const d = await new RunplaneClient(url, up.adminToken).dispatchPod(podId);
          accepted.push(`${podId}:${d.epoch}`);
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          refused.set(err.code, (refused.get(err.code) ?? 0) + 1);
          await sleep(err.status === 0 ? 50 : 5);
        }
      }
    };
    const loops = targets.flatMap((id) => Array.from({ length: 6 }, () => storm(id)));
    await eventually(() => accepted.length >= 4, 60_000, 50);
    await up.kill9();
    await sleep(300);
    up = await startUp(upOpts);
    url = up.url;
    const before = accepted.length;
    await eventually(() => accepted.length >= before + 4, 60_000, 50);
    stop = true;
    await Promise.all(loops);

    const admin = new RunplaneClient(up.url, up.adminToken);
    expect(refused.get('EPOCH_IN_FLIGHT') ?? 0).toBeGreaterThan(0);
    expect(refused.get('POD_CONVERGED') ?? 0).toBeGreaterThan(0);
    // Accepted answers are distinct epochs: no epoch was handed out twice.
    expect(new Set(accepted).size).toBe(accepted.length);
    // Let in-flight epochs settle, so every epoch that began has either ended or is the last.
    for (const p of busy) await admin.archivePod(p.pod_id);
    for (const id of targets) {
      const pod = await admin.getPod(id);
      const epochs = (await admin.podEpochs(id)).epochs;
      assertSerial(epochs, pod.converged_at);
      const jobs = (await admin.listJobs({ label: `runplane.pod=${id}`, limit: 1000 })).jobs;
      // One job per epoch attempt.
      expect(jobs.length).toBe(epochs.reduce((s, e) => s + (e.job_id ? e.attempt : e.attempt - 1), 0));
      expect(new Set(jobs.map((j) => j.name)).size).toBe(jobs.length);
    }
    const converged = await admin.getPod(done.pod_id);
    expect(converged.statistics.epochs_dispatched).toBe(0);
    expect((await admin.podEpochs(done.pod_id)).epochs).toEqual([]);
    expect(accepted.some((a) => a.startsWith(done.pod_id))).toBe(false);
  });
}

describe('sqlite', () => suite('sqlite'));
describe.skipIf(!pgOk)('postgres', () => suite('postgres'));
