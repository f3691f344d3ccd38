/**
 * The pod evaluator over HTTP on a real controller, per dialect: identity of pods, validation,
 * idempotent results, convergence, dispatch under concurrency, epoch ends and retries with
 * backoff (fake clock), reset / expiry / model versions, league ratings, replays and the trace.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RunplaneClient } from '../../src/client/client.js';
import type { PodConfigInput } from '../../src/pods/schemas.js';
import type { Clock } from '../../src/shared/clock.js';
import { eventually, startTestController, type TestController } from '../helpers/controller.js';
import type { DialectUnderTest } from '../helpers/store.js';
import { controllers, forEachDialect, ManualWorker, rejected } from './support.js';

const P = ['alpha', 'bravo', 'charlie', 'delta'];
const TEMPLATE = { command: ['/bin/true'] };

/** Games where alpha always wins, bravo is second, charlie third, delta last. */
function orderedGames(prefix: string, n: number, order = P) {
  return Array.from({ length: n }, (_, i) => ({
    game_id: `${prefix}-${i}`,
    placements: Object.fromEntries(order.map((p, k) => [p, k + 1])),
    turns: 20,
    replay: `replay://${prefix}/${i}`,
  }));
}

async function podCount(t: TestController): Promise<{ pods: number; games: number; events: number }> {
  const db = t.ctl.store.db;
  const count = async (table: 'pods' | 'pod_games' | 'events') =>
    Number(
      (
        await db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return { pods: await count('pods'), games: await count('pod_games'), events: await count('events') };
}

async function epochJobs(client: RunplaneClient, podId: string) {
  return (await client.listJobs({ label: `runplane.pod=${podId}`, limit: 1000 })).jobs;
}

class FakeClock implements Clock {
  t = Date.now();
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

forEachDialect((dialect) => {
  const start = controllers(dialect);

  describe('pods', () => {
    it('creates a pod once per participants + seed + config, and validates the definition', async () => {
      const t = await start();
      const a = await t.admin.createPod({ participants: P, seed: 7, config: { precision: 0.4 } });
      expect(a.status).toBe('ready');
      expect(a.participants).toEqual([...P].sort());
      expect(a.config).toMatchObject({ precision: 0.4, epoch_size: 100, confidence_target: 0.99 });
      // Same set in another order, defaults spelled out: the same pod, answered 200.
      const res = await fetch(`${t.ctl.url}/api/v1/pods`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.config.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          participants: [...P].reverse(),
          seed: 7,
          config: { precision: 0.4, epoch_size: 100 },
        }),
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { pod_id: string }).pod_id).toBe(a.pod_id);
      const other = await t.admin.createPod({ participants: P, seed: 8, config: { precision: 0.4 } });
      expect(other.pod_id).not.toBe(a.pod_id);

      const before = await podCount(t);
      for (const participants of [P.slice(0, 3), [...P, 'echo'], ['alpha', 'alpha', 'bravo', 'charlie']]) {
        const err = await rejected(t.admin.createPod({ participants, seed: 1 }));
        expect(err.status).toBe(422);
        expect(err.details[0]?.field).toBe('participants');
      }
      const bad = await rejected(
        t.admin.createPod({ participants: P, seed: 1, config: { confidence_target: 1 } }),
      );
      expect(bad.status).toBe(422);
      expect(await podCount(t)).toEqual(before);
      expect((await t.admin.listPods({ status: 'ready' })).pods).toHaveLength(2);
    });

    it('records results idempotently by game_id and rejects bad games with nothing stored', async () => {
      const t = await start();
      const pod = await t.admin.createPod({ participants: P, seed: 1 });
      const games = orderedGames('g', 5);
      const r1 = await t.admin.postPodResults(pod.pod_id, { games });
      expect(r1).toMatchObject({ accepted: 5, duplicates: 0, games_played: 5 });
      // Two repeats and one new game; a game repeated inside the request counts once.
      const extra = orderedGames('h', 1);
      const r2 = await t.admin.postPodResults(pod.pod_id, {
        games: [games[0]!, games[1]!, ...extra, ...extra],
      });
      expect(r2).toMatchObject({ accepted: 1, duplicates: 3, games_played: 6 });
      const after = await t.admin.getPod(pod.pod_id);
      expect(after.statistics).toMatchObject({ games_played: 6, duplicate_games: 3 });
      const alpha = after.aggregation.find((x) => x.participant === 'alpha');
      expect(alpha).toMatchObject({
        games: 6,
        placement_counts: [6, 0, 0, 0],
        mean_placement: 1,
        win_rate: 1,
      });

      const before = await podCount(t);
      const cases: Array<{ game_id: string; placements: Record<string, number> }> = [
        { game_id: 'x1', placements: { alpha: 1, bravo: 2, charlie: 3, echo: 4 } },
        { game_id: 'x2', placements: { alpha: 1, bravo: 2, charlie: 3 } },
        { game_id: 'x3', placements: { alpha: 1, bravo: 2, charlie: 3, delta: 5 } },
      ];
      for (const bad of cases) {
        // The good game in the same request is not stored either.
        const err = await rejected(
          t.admin.postPodResults(pod.pod_id, { games: [...orderedGames('ok', 1), bad] }),
        );
        expect(err.status).toBe(422);
        expect(err.details.length).toBeGreaterThan(0);
      }
      expect(await podCount(t)).toEqual(before);
      expect((await t.admin.getPod(pod.pod_id)).statistics.games_played).toBe(6);
      // Ties are allowed.
      const tie = await t.admin.postPodResults(pod.pod_id, {
        games: [{ game_id: 'tie', placements: { alpha: 1, bravo: 1, charlie: 3, delta: 3 } }],
      });
      expect(tie.accepted).toBe(1);
      expect((await rejected(t.admin.postPodResults('pod_nope', { games }))).status).toBe(404);
    });

    it('converges on a clear ranking, then refuses games and dispatches', async () => {
      const t = await start();
      const pod = await t.admin.createPod({
        participants: P,
        seed: 3,
        config: { confidence_target: 0.99, precision: 0.5, simulation: TEMPLATE },
      });
      let converged = false;
      let n = 0;
      while (!converged && n < 400) {
        const r = await t.admin.postPodResults(pod.pod_id, { games: orderedGames(`b${n}`, 10) });
        n += 10;
        converged = r.converged;
      }
      expect(converged).toBe(true);
      const view = await t.admin.getPod(pod.pod_id);
      expect(view.status).toBe('converged');
      expect(view.stop_reason).toBe('confidence_target_met');
      expect(view.convergence.converged).toBe(true);
      expect(view.convergence.ranking).toEqual(P);
      expect(view.convergence.confidence).toBeGreaterThanOrEqual(0.99);
      for (const p of view.posterior) expect(p.interval_width).toBeLessThan(0.5);
      // Converging took fewer games than a fixed budget would spend, and not too few.
      expect(view.statistics.games_played).toBeGreaterThan(10);
      expect(view.statistics.games_played).toBeLessThan(400);

      expect((await rejected(t.admin.dispatchPod(pod.pod_id))).code).toBe('POD_CONVERGED');
      expect(
        (await rejected(t.admin.postPodResults(pod.pod_id, { games: orderedGames('late', 1) }))).code,
      ).toBe('POD_CONVERGED');
      expect((await t.admin.listPods({ status: 'converged' })).pods.map((p) => p.pod_id)).toEqual([
        pod.pod_id,
      ]);
      const board = await t.admin.leaderboard();
      expect(board.participants.map((p) => p.participant)).toEqual(P);
      expect(board.participants[0]).toMatchObject({ rank: 1, games: view.statistics.games_played });
      expect(board.participants[0]!.sigma).toBeLessThan(25 / 3);
    });

    it('dispatches exactly one epoch under concurrent requests', async () => {
      const t = await start();
      const pod = await t.admin.createPod({
        participants: P,
        seed: 1,
        config: { simulation: TEMPLATE, adaptive_scaling: false, epoch_size: 10 },
      });
      const results = await Promise.allSettled(
        Array.from({ length: 25 }, () => t.admin.dispatchPod(pod.pod_id)),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      expect(ok).toHaveLength(1);
      for (const r of results)
        if (r.status === 'rejected') expect((r.reason as { code: string }).code).toBe('EPOCH_IN_FLIGHT');
      const jobs = await epochJobs(t.admin, pod.pod_id);
      expect(jobs).toHaveLength(1);
      expect(jobs[0]!.env).toMatchObject({
        RUNPLANE_POD_ID: pod.pod_id,
        RUNPLANE_POD_EPOCH: '1',
        RUNPLANE_POD_EPOCH_SIZE: '10',
        RUNPLANE_POD_SEED: '1',
        RUNPLANE_POD_PARTICIPANTS: [...P].sort().join(','),
      });
      const view = await t.admin.getPod(pod.pod_id);
      expect(view.status).toBe('active');
      expect(view.current_epoch).toMatchObject({ epoch: 1, size: 10, status: 'running', attempt: 1 });
      expect((await rejected(t.admin.dispatchPod(pod.pod_id))).code).toBe('EPOCH_IN_FLIGHT');
      const none = await t.admin.createPod({ participants: P, seed: 2 });
      expect((await rejected(t.admin.dispatchPod(none.pod_id))).code).toBe('NO_SIMULATION_TEMPLATE');
    });

    it('runs an epoch to its end through a worker, and grows adaptive epochs 1 -> 5 -> 20', async () => {
      const t = await start();
      const w = await ManualWorker.register(t, 'sim', { cpu: 4 });
      const sim = await t.as('operator');
      const pod = await t.admin.createPod({
        participants: P,
        seed: 5,
        config: { simulation: TEMPLATE, epoch_size: 100, confidence_target: 0.999, precision: 0.2 },
      });
      const sizes: number[] = [];
      let played = 0;
      for (let epoch = 1; epoch <= 3; epoch++) {
        const d = await t.admin.dispatchPod(pod.pod_id);
        sizes.push(d.size);
        const [a] = await w.assignments(1, []);
        expect(a?.job_id).toBe(d.job_id);
        expect(a?.env.RUNPLANE_POD_TOKEN).toBeTruthy();
        await w.report(a!.attempt_id, 'RUNNING');
        // Mixed results keep the pod far from converging.
        const games = Array.from({ length: d.size }, (_, i) => ({
          game_id: `e${epoch}-${i}`,
          placements: Object.fromEntries(P.map((p, k) => [p, ((k + i) % 4) + 1])),
        }));
        await sim.postPodResults(pod.pod_id, { epoch, games });
        played += d.size;
        await w.report(a!.attempt_id, 'SUCCEEDED', 0);
        await eventually(async () => (await t.admin.getPod(pod.pod_id)).status === 'ready');
      }
      expect(sizes).toEqual([1, 5, 20]);
      const epochs = (await t.admin.podEpochs(pod.pod_id)).epochs;
      expect(epochs.map((e) => [e.epoch, e.status, e.games_received])).toEqual([
        [1, 'completed', 1],
        [2, 'completed', 5],
        [3, 'completed', 20],
      ]);
      const view = await t.admin.getPod(pod.pod_id);
      expect(view.statistics).toMatchObject({ epochs_dispatched: 3, games_played: played });
      expect(view.convergence.converged).toBe(false);
      expect(view.convergence.reasons.length).toBeGreaterThan(0);
    });

    it('stops a pod at max_epochs_per_pod', async () => {
      const t = await start();
      const pod = await t.admin.createPod({
        participants: P,
        seed: 5,
        config: { simulation: TEMPLATE, max_epochs_per_pod: 2, adaptive_scaling: false, epoch_size: 2 },
      });
      for (let epoch = 1; epoch <= 2; epoch++) {
        const d = await t.admin.dispatchPod(pod.pod_id);
        await t.admin.postPodResults(pod.pod_id, {
          epoch,
          games: Array.from({ length: 2 }, (_, i) => ({
            game_id: `e${epoch}-${i}`,
            placements: Object.fromEntries(P.map((p, k) => [p, ((k + i + epoch) % 4) + 1])),
          })),
        });
        // The job has no worker: killing it ends the epoch (cancelled) and frees the pod.
        await t.admin.terminateJob(d.job_id!);
        await eventually(async () => (await t.admin.getPod(pod.pod_id)).status !== 'active');
      }
      const view = await t.admin.getPod(pod.pod_id);
      expect(view.status).toBe('converged');
      expect(view.stop_reason).toBe('max_epochs');
      expect(view.convergence.converged).toBe(false);
      expect((await rejected(t.admin.dispatchPod(pod.pod_id))).code).toBe('POD_CONVERGED');
    });

    it('archives: dispatch, results and reset answer POD_ARCHIVED, and the epoch job is stopped', async () => {
      const t = await start();
      const pod = await t.admin.createPod({ participants: P, seed: 9, config: { simulation: TEMPLATE } });
      const d = await t.admin.dispatchPod(pod.pod_id);
      const archived = await t.admin.archivePod(pod.pod_id);
      expect(archived.status).toBe('archived');
      expect(archived.archived_at).not.toBeNull();
      expect((await t.admin.getJob(d.job_id!)).state).toBe('KILLED');
      expect((await t.admin.podEpochs(pod.pod_id)).epochs[0]?.status).toBe('cancelled');
      // One request at a time: a promise made before the previous one is awaited would
      // reject with no handler attached yet.
      for (const call of [
        () => t.admin.dispatchPod(pod.pod_id),
        () => t.admin.postPodResults(pod.pod_id, { games: orderedGames('a', 1) }),
        () => t.admin.resetPod(pod.pod_id),
      ])
        expect((await rejected(call())).code).toBe('POD_ARCHIVED');
      expect((await t.admin.archivePod(pod.pod_id)).status).toBe('archived');
    });

    it('resets with decayed evidence; a new model version or config resets too', async () => {
      const t = await start();
      const pod = await t.admin.createPod({ participants: P, seed: 4, config: { evidence_decay: 0.5 } });
      for (let i = 0; i < 40 && (await t.admin.getPod(pod.pod_id)).status !== 'converged'; i++)
        await t.admin.postPodResults(pod.pod_id, { games: orderedGames(`r${i}`, 10) });
      const converged = await t.admin.getPod(pod.pod_id);
      expect(converged.status).toBe('converged');
      const evidence = converged.posterior.find((p) => p.participant === 'alpha')!.evidence;

      const reset = await t.admin.resetPod(pod.pod_id, 'new map pool');
      expect(reset.status).toBe('ready');
      expect(reset.statistics).toMatchObject({ reset_count: 1, games_since_reset: 0, epochs_since_reset: 0 });
      expect(reset.posterior.find((p) => p.participant === 'alpha')!.evidence).toBeCloseTo(evidence / 2, 6);
      // Old evidence alone never re-converges it: a new game is needed.
      expect(reset.convergence.converged).toBe(false);
      expect(reset.convergence.reasons.join(' ')).toMatch(/since the reset/);
      // All-time aggregation is kept.
      expect(reset.aggregation.find((a) => a.participant === 'alpha')!.games).toBe(
        converged.statistics.games_played,
      );

      const v = await t.admin.setParticipantVersion('bravo', 'v2');
      expect(v).toMatchObject({ previous_version: null, model_version: 'v2', reset_pods: [pod.pod_id] });
      expect((await t.admin.getPod(pod.pod_id)).statistics.reset_count).toBe(2);
      // The same version again changes nothing.
      expect((await t.admin.setParticipantVersion('bravo', 'v2')).reset_pods).toEqual([]);

      const patched = await t.admin.updatePodConfig(pod.pod_id, { precision: 0.3 });
      expect(patched.config).toMatchObject({ precision: 0.3 });
      expect(patched.statistics.reset_count).toBe(3);
      // Its identity follows its config: creating it with the new config finds it.
      const again = await t.admin.createPod({
        participants: P,
        seed: 4,
        config: { evidence_decay: 0.5, precision: 0.3 },
      });
      expect(again.pod_id).toBe(pod.pod_id);
      const kinds = (await t.admin.podTrace(pod.pod_id))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).kind);
      expect(kinds.filter((k) => k === 'reset')).toHaveLength(3);
    });

    it('serves the replay index, the trace as NDJSON and CSV, and keeps the simulator token to results', async () => {
      const t = await start();
      const a = await t.admin.createPod({ participants: P, seed: 1 });
      const b = await t.admin.createPod({ participants: ['alpha', 'echo', 'foxtrot', 'golf'], seed: 1 });
      await t.admin.postPodResults(a.pod_id, { games: orderedGames('a', 3) });
      await t.admin.postPodResults(b.pod_id, {
        games: orderedGames('b', 2, ['alpha', 'echo', 'foxtrot', 'golf']),
      });
      expect((await t.admin.replays({ participant: 'alpha' })).games).toHaveLength(5);
      expect((await t.admin.replays({ participant: 'echo' })).games).toHaveLength(2);
      const page = await t.admin.replays({ pod_id: a.pod_id, limit: 2 });
      expect(page.games.map((g) => g.game_id)).toEqual(['a-0', 'a-1']);
      expect(page.games[0]).toMatchObject({ replay: 'replay://a/0', turns: 20 });
      const rest = await t.admin.replays({ pod_id: a.pod_id, cursor: page.next_cursor! });
      expect(rest.games.map((g) => g.game_id)).toEqual(['a-2']);

      const nd = (await t.admin.podTrace(a.pod_id, 'ndjson'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(nd.map((l) => l.kind)).toEqual(['created', 'results']);
      expect(nd[1]).toMatchObject({ pod_id: a.pod_id, games_played: 3, detail: { accepted: 3 } });
      const csv = (await t.admin.podTrace(a.pod_id, 'csv')).trim().split('\r\n');
      expect(csv[0]).toBe('seq,pod_id,at,kind,epoch,games_played,confidence,detail');
      expect(csv).toHaveLength(3);

      // The token jobs get may post results and nothing else.
      const token = (
        await t.ctl.store.db.selectFrom('tokens').select('role').where('role', '=', 'simulator').execute()
      ).length;
      expect(token).toBe(1);
      const viewer = await t.as('viewer');
      expect((await rejected(viewer.postPodResults(a.pod_id, { games: orderedGames('v', 1) }))).status).toBe(
        403,
      );
    });
  });

  describe('pods with a fake clock', () => {
    const open: TestController[] = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((t) => t.close()));
    });
    const startFake = async (d: DialectUnderTest, clock: FakeClock) => {
      const t = await startTestController(d, { killGraceMs: '1s' }, { clock });
      open.push(t);
      return t;
    };

    it('retries failed and incomplete epochs with backoff, then gives up', async () => {
      const clock = new FakeClock();
      const t = await startFake(dialect, clock);
      await t.ctl.podLoop.stop();
      const w = await ManualWorker.register(t, 'sim', { cpu: 4 });
      const config: PodConfigInput = {
        simulation: TEMPLATE,
        adaptive_scaling: false,
        epoch_size: 4,
        max_attempts: 3,
        retry_backoff_s: 10,
        retry_backoff_max_s: 15,
      };
      const pod = await t.admin.createPod({ participants: P, seed: 2, config });
      await t.admin.dispatchPod(pod.pod_id);
      const known: string[] = [];
      const runAttempt = async (outcome: 'FAILED' | 'SUCCEEDED', games = 0, from = 0) => {
        const [a] = await w.assignments(1, known);
        known.push(a!.attempt_id);
        await w.report(a!.attempt_id, 'RUNNING');
        if (games > 0)
          await t.admin.postPodResults(pod.pod_id, {
            epoch: 1,
            games: orderedGames('e1', games).slice(from),
          });
        await w.report(a!.attempt_id, outcome, outcome === 'FAILED' ? 1 : 0);
        return a!;
      };
      // Attempt 1 fails: a retry is scheduled 10 s out.
      await runAttempt('FAILED');
      const e1 = await eventually(async () => {
        const e = (await t.admin.podEpochs(pod.pod_id)).epochs[0];
        return e?.status === 'retry_wait' ? e : undefined;
      });
      expect(e1).toMatchObject({ attempt: 1 });
      expect(Date.parse(e1.next_retry_at!) - clock.now()).toBe(10_000);
      expect(e1.last_error).toMatch(/FAILED/);
      expect((await t.admin.getPod(pod.pod_id)).status).toBe('active');
      expect((await rejected(t.admin.dispatchPod(pod.pod_id))).code).toBe('EPOCH_IN_FLIGHT');
      clock.advance(9_999);
      expect((await t.ctl.podLoop.tick()).launched).toBe(0);
      clock.advance(1);
      expect((await t.ctl.podLoop.tick()).launched).toBe(1);
      // Attempt 2 reports 2 of 4 games and exits 0: incomplete, retried after 15 s (capped).
      await runAttempt('SUCCEEDED', 2);
      const e2 = await eventually(async () => {
        const e = (await t.admin.podEpochs(pod.pod_id)).epochs[0];
        return e?.status === 'retry_wait' && e.attempt === 2 ? e : undefined;
      });
      expect(e2.last_error).toMatch(/incomplete: 2 of 4/);
      expect(Date.parse(e2.next_retry_at!) - clock.now()).toBe(15_000);
      clock.advance(15_000);
      expect((await t.ctl.podLoop.tick()).launched).toBe(1);
      // Attempt 3 replays the same games (2 duplicates) and fills the gap: the epoch completes.
      await runAttempt('SUCCEEDED', 4);
      await eventually(async () => (await t.admin.getPod(pod.pod_id)).status === 'ready');
      const done = (await t.admin.podEpochs(pod.pod_id)).epochs[0];
      expect(done).toMatchObject({ status: 'completed', attempt: 3, games_received: 4 });
      expect((await t.admin.getPod(pod.pod_id)).statistics).toMatchObject({
        games_played: 4,
        duplicate_games: 2,
      });
      const jobs = await epochJobs(t.admin, pod.pod_id);
      expect(jobs.map((j) => j.name).sort()).toEqual(
        [1, 2, 3].map((k) => `${pod.pod_id}-epoch-1-attempt-${k}`),
      );

      // Epoch 2 fails three times: it gives up and the pod is ready again with the record.
      await t.admin.dispatchPod(pod.pod_id);
      for (let k = 1; k <= 3; k++) {
        await runAttempt('FAILED');
        if (k < 3) {
          await eventually(
            async () => (await t.admin.podEpochs(pod.pod_id)).epochs[1]?.status === 'retry_wait',
          );
          clock.advance(15_000);
          expect((await t.ctl.podLoop.tick()).launched).toBe(1);
        }
      }
      await eventually(async () => (await t.admin.getPod(pod.pod_id)).status === 'ready');
      const gaveUp = (await t.admin.podEpochs(pod.pod_id)).epochs[1];
      expect(gaveUp).toMatchObject({ status: 'failed', attempt: 3 });
      expect(gaveUp?.last_error).toMatch(/gave up after 3 attempts/);
      expect((await t.admin.getPod(pod.pod_id)).statistics.failed_epochs).toBe(1);
    });

    it('resets a converged pod when it expires', async () => {
      const clock = new FakeClock();
      const t = await startFake(dialect, clock);
      await t.ctl.podLoop.stop();
      const pod = await t.admin.createPod({ participants: P, seed: 2, config: { expire_after_s: 3600 } });
      for (let i = 0; i < 40 && (await t.admin.getPod(pod.pod_id)).status !== 'converged'; i++)
        await t.admin.postPodResults(pod.pod_id, { games: orderedGames(`x${i}`, 10) });
      const c = await t.admin.getPod(pod.pod_id);
      expect(c.status).toBe('converged');
      expect(Date.parse(c.expires_at!) - Date.parse(c.converged_at!)).toBe(3_600_000);
      clock.advance(3_599_999);
      expect((await t.ctl.podLoop.tick()).expired).toBe(0);
      clock.advance(1);
      expect((await t.ctl.podLoop.tick()).expired).toBe(1);
      const r = await t.admin.getPod(pod.pod_id);
      expect(r.status).toBe('ready');
      expect(r.expires_at).toBeNull();
      expect(r.statistics.reset_count).toBe(1);
    });
  });
});
