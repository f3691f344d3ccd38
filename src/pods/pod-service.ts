import type { Logger } from 'pino';
import type { StoredEvent } from '../events/catalog.js';
import { event, type NewEvent } from '../events/catalog.js';
import { outboxRepo } from '../events/outbox-repo.js';
import { Prefetched } from '../events/prefetched.js';
import type { JobService } from '../jobs/job-service.js';
import { endedJobIds, type JobState, TERMINAL_JOB_STATES } from '../jobs/model.js';
import type { Clock } from '../shared/clock.js';
import { AppError, conflict, invalid, notFound } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Store, Tx } from '../store/database.js';
import { nextEpochSize } from './epoch-sizing.js';
import {
  ATTEMPT_LABEL,
  definitionProblems,
  EPOCH_LABEL,
  type EpochEnd,
  type EpochStatus,
  epochEnd,
  epochJob,
  gameProblems,
  IN_FLIGHT_EPOCH,
  normalizeConfig,
  POD_LABEL,
  type PodConfig,
  type PodStatus,
  retryDelayMs,
  specHash,
} from './model.js';
import { type EpochRow, type PodParticipantRow, type PodRow, podRepo } from './pod-repo.js';
import { type Evaluation, evaluate } from './posterior.js';
import { hashString, mixSeed } from './random.js';
import { conservative, DEFAULT_SIGMA, type LeagueRating, newRating, rateGame } from './ratings.js';
import type {
  DispatchResponse,
  EpochView,
  Leaderboard,
  ParticipantUpdateResponse,
  PodConfigInput,
  PodCreate,
  PodListQuery,
  PodView,
  ReplayQuery,
  ReplayView,
  ResultsRequest,
  ResultsResponse,
} from './schemas.js';
import { epochView, evidenceOf, podView, replayView, type TraceLine, traceLine } from './views.js';

export interface PodServiceOptions {
  /** The simulator-role token given to epoch jobs (RUNPLANE_POD_TOKEN) to post their results. */
  simulatorToken: string | null;
  /** A launching epoch untouched this long is launched again by the loop (its request died). */
  launchGraceMs?: number;
}

/** Job environment variable that carries the simulator token; a secret, like a run's learner token. */
export const POD_TOKEN_ENV = 'RUNPLANE_POD_TOKEN';

interface Ctx {
  tx: Tx;
  now: number;
  events: NewEvent[];
  /** Jobs to terminate after the commit (epochs stopped by convergence, reset, archive). */
  kill: string[];
}

const parseConfig = (pod: PodRow) => JSON.parse(pod.config) as PodConfig;

/**
 * The pod meta controller: pods and their lifecycle, dispatch of epochs as simulation jobs,
 * results (idempotent by game_id) and the Bayesian evaluator's verdict, retries, resets and
 * expiry, the replay index, the trace, and league ratings across pods.
 *
 * Every state change is one `store.write` transaction that reads the pod and changes it with a
 * conditional update, so concurrent requests, the loop and the job-event handler (on any
 * replica) serialise on the pod, and the events of a change commit with it.
 */
export class PodService {
  private readonly launchGraceMs: number;
  /** Epochs looked up for the batch of job events being delivered (see prepareJobEvents). */
  private readonly epochsByJob = new Prefetched<EpochRow>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly jobs: JobService,
    private readonly log: Logger,
    private readonly opts: PodServiceOptions,
  ) {
    this.launchGraceMs = opts.launchGraceMs ?? 5000;
  }

  // ----- pods -----

  /** Creates a pod, or returns the existing one with the same participants, seed and config. */
  async create(req: PodCreate): Promise<{ created: boolean; pod: PodView }> {
    const config = normalizeConfig(req.config ?? {});
    const problems = definitionProblems(req.participants, config);
    if (problems.length > 0) throw invalid(problems);
    const participants = [...req.participants].sort();
    const hash = specHash(participants, req.seed, config);
    const now = this.clock.now();
    const created = await this.store.write(async (tx) => {
      const existing = await podRepo.podBySpec(tx, hash);
      if (existing) return { id: existing.id, created: false };
      const id = newId('pod', now);
      const first = newRating();
      await podRepo.ensureParticipants(tx, participants, first, now);
      const versions = new Map(
        (await podRepo.participants(tx, participants)).map((p) => [p.id, p.model_version]),
      );
      await podRepo.insertPod(tx, {
        id,
        spec_hash: hash,
        participants: JSON.stringify(participants),
        seed: req.seed,
        config: JSON.stringify(config),
        status: 'ready',
        stop_reason: null,
        epochs_dispatched: 0,
        epochs_since_reset: 0,
        last_epoch_size: null,
        in_flight_epoch: null,
        games_played: 0,
        games_since_reset: 0,
        duplicate_games: 0,
        failed_epochs: 0,
        reset_count: 0,
        confidence: 0,
        evaluation: null,
        last_error: null,
        converged_at: null,
        expires_at: null,
        last_reset_at: null,
        archived_at: null,
        created_at: now,
        updated_at: now,
      });
      await podRepo.insertPodParticipants(
        tx,
        participants.map((p, position) => ({
          pod_id: id,
          participant_id: p,
          position,
          model_version: versions.get(p) ?? null,
          p1: 0,
          p2: 0,
          p3: 0,
          p4: 0,
          e1: 0,
          e2: 0,
          e3: 0,
          e4: 0,
          turns: 0,
        })),
      );
      await this.trace(tx, id, 'created', null, 0, null, now, { participants, seed: req.seed, config });
      await outboxRepo.append(
        tx,
        [
          event('pod.created', id, { pod_id: id, participants, seed: req.seed }),
          event('pod.status_changed', id, {
            pod_id: id,
            status: 'ready',
            previous: 'none',
            reason: 'created',
            dispatchable: true,
          }),
        ],
        now,
      );
      return { id, created: true };
    });
    return { created: created.created, pod: await this.get(created.id) };
  }

  async get(id: string): Promise<PodView> {
    const pod = await podRepo.pod(this.store.db, id);
    if (!pod) throw notFound('pod', id);
    const parts = await podRepo.podParticipants(this.store.db, [id]);
    const current =
      pod.in_flight_epoch === null ? null : await podRepo.epoch(this.store.db, id, pod.in_flight_epoch);
    return podView(pod, parts, current ?? null);
  }

  async list(q: PodListQuery): Promise<{ pods: PodView[]; next_cursor: string | null }> {
    const limit = q.limit ?? 100;
    const rows = await podRepo.listPods(this.store.db, {
      status: q.status,
      participant: q.participant,
      ...(q.cursor === undefined ? {} : { afterSeq: Number(q.cursor) }),
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const parts = await podRepo.podParticipants(
      this.store.db,
      page.map((p) => p.id),
    );
    const byPod = new Map<string, PodParticipantRow[]>();
    for (const r of parts) byPod.set(r.pod_id, [...(byPod.get(r.pod_id) ?? []), r]);
    const last = page[page.length - 1];
    return {
      pods: page.map((p) => podView(p, byPod.get(p.id) ?? [], null)),
      next_cursor: rows.length > limit && last ? String(last.seq) : null,
    };
  }

  async epochs(id: string): Promise<EpochView[]> {
    if (!(await podRepo.pod(this.store.db, id))) throw notFound('pod', id);
    return (await podRepo.epochsOf(this.store.db, id)).map(epochView);
  }

  /** The pod's training trace (dispatches, results, convergence, retries, resets), oldest first. */
  async exportTrace(id: string): Promise<TraceLine[]> {
    if (!(await podRepo.pod(this.store.db, id))) throw notFound('pod', id);
    return (await podRepo.traceOf(this.store.db, id)).map(traceLine);
  }

  private async trace(
    tx: Tx,
    podId: string,
    kind: string,
    epoch: number | null,
    games: number,
    confidence: number | null,
    now: number,
    detail: Record<string, unknown>,
  ): Promise<void> {
    await podRepo.appendTrace(tx, {
      pod_id: podId,
      kind,
      epoch_no: epoch,
      games_played: games,
      confidence,
      detail: JSON.stringify(detail),
      created_at: now,
    });
  }

  async replays(q: ReplayQuery): Promise<{ games: ReplayView[]; next_cursor: string | null }> {
    const limit = q.limit ?? 100;
    const rows = await podRepo.games(this.store.db, {
      podId: q.pod_id,
      participant: q.participant,
      ...(q.cursor === undefined ? {} : { afterSeq: Number(q.cursor) }),
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      games: page.map(replayView),
      next_cursor: rows.length > limit && last ? String(last.seq) : null,
    };
  }

  // ----- dispatch -----

  /**
   * Asks for the pod's next epoch. The check and the claim are one transaction with a
   * conditional update: under concurrent requests exactly one wins and the others get 409
   * EPOCH_IN_FLIGHT; a converged pod answers POD_CONVERGED and an archived one POD_ARCHIVED,
   * across restarts too, since the status is durable. The job is launched after the commit
   * under a unique name, so a launch retried by the loop after a crash finds the first one.
   */
  async dispatch(id: string): Promise<DispatchResponse> {
    const now = this.clock.now();
    const claimed = await this.store.write(async (tx) => {
      const ctx: Ctx = { tx, now, events: [], kill: [] };
      const pod = await podRepo.pod(tx, id);
      if (!pod) throw notFound('pod', id);
      refuseUnlessReady(pod);
      const config = parseConfig(pod);
      if (!config.simulation)
        throw conflict('NO_SIMULATION_TEMPLATE', `pod ${id} has no simulation template in its config`);
      if (pod.epochs_since_reset >= config.max_epochs_per_pod) {
        await this.stopAtEpochCap(ctx, pod, config);
        await this.flushEvents(ctx);
        return null;
      }
      const parts = await podRepo.podParticipants(tx, [id]);
      const decision = nextEpochSize({
        adaptive: config.adaptive_scaling,
        epochSize: config.epoch_size,
        previousSize: pod.epochs_since_reset === 0 ? null : pod.last_epoch_size,
        evidence: evidenceOf(parts),
        prior: config.prior,
        confidenceTarget: config.confidence_target,
        precision: config.precision,
      });
      const epoch = pod.epochs_dispatched + 1;
      if (!(await podRepo.claimDispatch(tx, id, pod.epochs_dispatched, { epoch, size: decision.size, now })))
        throw conflict('EPOCH_IN_FLIGHT', `pod ${id} has an epoch in flight`);
      const row: EpochRow = {
        pod_id: id,
        epoch_no: epoch,
        size: decision.size,
        status: 'launching',
        attempt: 1,
        job_id: null,
        games_received: 0,
        estimated_remaining: decision.estimated_remaining,
        next_retry_at: null,
        last_error: null,
        created_at: now,
        finished_at: null,
        updated_at: now,
      };
      await podRepo.insertEpoch(tx, row);
      await this.trace(tx, id, 'dispatched', epoch, pod.games_played, pod.confidence, now, {
        size: decision.size,
        estimated_remaining: decision.estimated_remaining,
      });
      ctx.events.push(
        statusEvent(pod, 'active', `epoch ${epoch} dispatched`),
        event('pod.epoch_dispatched', id, {
          pod_id: id,
          epoch,
          size: decision.size,
          attempt: 1,
          job_id: null,
        }),
      );
      await this.flushEvents(ctx);
      return { pod, epoch: row };
    });
    if (!claimed)
      throw conflict('POD_CONVERGED', `pod ${id} reached max_epochs_per_pod and is not simulated again`);
    const jobId = await this.launchEpoch(claimed.pod, claimed.epoch);
    return {
      pod_id: id,
      epoch: claimed.epoch.epoch_no,
      size: claimed.epoch.size,
      attempt: 1,
      job_id: jobId,
      estimated_remaining: claimed.epoch.estimated_remaining,
    };
  }

  /**
   * Launches the job of an epoch attempt in status launching, and records it. Idempotent: the
   * job name is unique per attempt, so a second launcher finds the first one's job. When the
   * epoch stopped meanwhile (the pod converged, was reset or archived), the job is stopped.
   */
  private async launchEpoch(pod: PodRow, e: EpochRow): Promise<string | null> {
    const config = parseConfig(pod);
    if (!config.simulation) return null;
    const req = epochJob({
      podId: pod.id,
      participants: JSON.parse(pod.participants) as string[],
      seed: pod.seed,
      epoch: e.epoch_no,
      attempt: e.attempt,
      size: e.size,
      template: config.simulation,
      token: null,
    });
    if (this.opts.simulatorToken) req.env = { ...req.env, [POD_TOKEN_ENV]: this.opts.simulatorToken };
    let jobId: string;
    try {
      jobId = (await this.jobs.launch(req)).job_id;
    } catch (err) {
      if (err instanceof AppError && err.code === 'DUPLICATE_JOB_NAME') {
        const found = await this.jobs.list({
          label: [`${POD_LABEL}=${pod.id}`, `${EPOCH_LABEL}=${e.epoch_no}`, `${ATTEMPT_LABEL}=${e.attempt}`],
          limit: 1,
        });
        const job = found.jobs[0];
        if (!job) throw err;
        jobId = job.job_id;
      } else {
        // The template cannot be launched (or the store failed): count it as a failed attempt.
        this.log.warn({ err, pod: pod.id, epoch: e.epoch_no }, 'launching an epoch failed');
        await this.endEpoch(
          pod.id,
          e.epoch_no,
          e.attempt,
          null,
          'FAILED',
          `launch failed: ${(err as Error).message}`,
        );
        return null;
      }
    }
    const now = this.clock.now();
    const recorded = await this.store.write(async (tx) => {
      const ok = await podRepo.updateEpochIf(tx, pod.id, e.epoch_no, ['launching'], e.attempt, {
        status: 'running',
        job_id: jobId,
        updated_at: now,
      });
      if (ok)
        await this.trace(tx, pod.id, 'launched', e.epoch_no, pod.games_played, null, now, {
          job_id: jobId,
          attempt: e.attempt,
        });
      return ok;
    });
    if (!recorded) {
      const current = await podRepo.epoch(this.store.db, pod.id, e.epoch_no);
      // Another launcher recorded this very job: nothing to undo.
      if (current?.job_id !== jobId) await this.stopJob(jobId, 'pod epoch no longer wanted');
    }
    return jobId;
  }

  // ----- results -----

  /**
   * Records games. All-or-nothing: a game naming other participants, or missing one, rejects
   * the whole request (422) with nothing stored. Games already recorded (same game_id) are
   * ignored and counted as duplicates. The evaluator then decides; when the pod converges, its
   * epoch in flight is stopped at once.
   */
  async recordResults(id: string, body: ResultsRequest): Promise<ResultsResponse> {
    const now = this.clock.now();
    const out = await this.store.write(async (tx) => {
      const ctx: Ctx = { tx, now, events: [], kill: [] };
      const pod = await podRepo.pod(tx, id);
      if (!pod) throw notFound('pod', id);
      if (pod.status === 'archived') throw conflict('POD_ARCHIVED', `pod ${id} is archived`);
      if (pod.status === 'converged')
        throw conflict('POD_CONVERGED', `pod ${id} has converged; it takes no more games`);
      const participants = JSON.parse(pod.participants) as string[];
      const problems = body.games.flatMap((g, i) =>
        gameProblems(participants, g.placements, `games.${i}.placements`),
      );
      if (body.epoch !== undefined && body.epoch > pod.epochs_dispatched)
        problems.push({
          field: 'epoch',
          code: 'UNKNOWN_EPOCH',
          message: `pod ${id} has no epoch ${body.epoch}`,
        });
      if (problems.length > 0) throw invalid(problems, 'results rejected; nothing was stored');

      const existing = await podRepo.existingGameIds(
        tx,
        id,
        body.games.map((g) => g.game_id),
      );
      const seen = new Set<string>();
      const fresh = body.games.filter((g) => {
        if (existing.has(g.game_id) || seen.has(g.game_id)) return false;
        seen.add(g.game_id);
        return true;
      });
      const duplicates = body.games.length - fresh.length;
      const epochNo = body.epoch ?? pod.in_flight_epoch;
      if (fresh.length > 0) {
        await podRepo.insertGames(
          tx,
          fresh.map((g) => ({
            pod_id: id,
            game_id: g.game_id,
            epoch_no: epochNo,
            placements: JSON.stringify(g.placements),
            turns: g.turns ?? null,
            replay: g.replay ?? null,
            recorded_at: now,
          })),
        );
        for (const p of participants) {
          const counts = [0, 0, 0, 0];
          let turns = 0;
          for (const g of fresh) {
            const place = g.placements[p] ?? 0;
            counts[place - 1] = (counts[place - 1] ?? 0) + 1;
            turns += g.turns ?? 0;
          }
          await podRepo.addPlacements(tx, id, p, { counts, turns });
        }
        await this.rateGames(tx, participants, fresh, now);
        if (epochNo !== null) await podRepo.addEpochGames(tx, id, epochNo, fresh.length);
      }

      let status = pod.status as PodStatus;
      let confidence = pod.confidence;
      let converged = false;
      if (fresh.length > 0) {
        const config = parseConfig(pod);
        const gamesSinceReset = pod.games_since_reset + fresh.length;
        const evaluation = await this.evaluateInTx(tx, pod, config, gamesSinceReset);
        confidence = evaluation.confidence;
        converged = evaluation.converged;
        const patch = {
          games_played: pod.games_played + fresh.length,
          games_since_reset: gamesSinceReset,
          duplicate_games: pod.duplicate_games + duplicates,
          confidence,
          evaluation: JSON.stringify(evaluation),
          updated_at: now,
        };
        if (converged) {
          await this.stopInFlightEpoch(ctx, pod, 'completed', 'the pod converged');
          await podRepo.updatePodIf(tx, id, [pod.status], {
            ...patch,
            status: 'converged',
            stop_reason: 'confidence_target_met',
            in_flight_epoch: null,
            converged_at: now,
            expires_at:
              config.expire_after_s === null ? null : now + Math.round(config.expire_after_s * 1000),
          });
          status = 'converged';
          ctx.events.push(
            statusEvent(pod, 'converged', 'confidence target met'),
            event('pod.converged', id, {
              pod_id: id,
              stop_reason: 'confidence_target_met',
              games_played: patch.games_played,
              confidence,
              ranking: evaluation.ranking,
            }),
          );
        } else {
          await podRepo.updatePodIf(tx, id, [pod.status], patch);
        }
        await this.trace(
          tx,
          id,
          converged ? 'converged' : 'results',
          epochNo,
          patch.games_played,
          confidence,
          now,
          {
            accepted: fresh.length,
            duplicates,
            ranking: evaluation.ranking,
            method: evaluation.method,
            ranking_confidence: evaluation.ranking_confidence,
            precision_confidence: evaluation.precision_confidence,
          },
        );
      } else if (duplicates > 0) {
        await podRepo.updatePodIf(tx, id, [pod.status], {
          duplicate_games: pod.duplicate_games + duplicates,
          updated_at: now,
        });
      }
      await this.flushEvents(ctx);
      return {
        response: {
          pod_id: id,
          accepted: fresh.length,
          duplicates,
          games_played: pod.games_played + fresh.length,
          status,
          converged,
          confidence,
        },
        kill: ctx.kill,
      };
    });
    for (const job of out.kill) await this.stopJob(job, 'pod converged');
    return out.response;
  }

  /** League ratings: each new game updates the four participants' Plackett-Luce ratings in order. */
  private async rateGames(
    tx: Tx,
    participants: readonly string[],
    games: ReadonlyArray<{ placements: Record<string, number> }>,
    now: number,
  ): Promise<void> {
    const ratings = new Map<string, LeagueRating>(
      (await podRepo.participants(tx, participants)).map((p) => [
        p.id,
        { mu: p.mu, sigma: p.sigma, games: p.games },
      ]),
    );
    for (const g of games) for (const [pid, r] of rateGame(ratings, g.placements)) ratings.set(pid, r);
    for (const [pid, r] of ratings) await podRepo.saveRating(tx, pid, r, now);
  }

  private async evaluateInTx(
    tx: Tx,
    pod: PodRow,
    config: PodConfig,
    gamesSinceReset: number,
  ): Promise<Evaluation> {
    const parts = await podRepo.podParticipants(tx, [pod.id]);
    return evaluate({
      evidence: evidenceOf(parts),
      confidenceTarget: config.confidence_target,
      precision: config.precision,
      prior: config.prior,
      // Seeded by the pod and its evidence: the same games always give the same verdict.
      seed: mixSeed(pod.seed, hashString(pod.id), gamesSinceReset, pod.reset_count),
      hasNewEvidence: gamesSinceReset > 0,
    });
  }

  // ----- epoch ends, retries -----

  /**
   * Before a batch of job.state_changed events reaches `onJobEnded`: the epochs of the jobs that
   * ended, in one query (most jobs are no pod's, and each would cost a query of its own).
   */
  readonly prepareJobEvents = async (events: readonly StoredEvent[]): Promise<void> => {
    await this.epochsByJob.load(endedJobIds(events), async (ids) =>
      (await podRepo.epochsByJobs(this.store.db, ids)).flatMap((e) =>
        e.job_id ? [[e.job_id, e] as const] : [],
      ),
    );
  };

  /** The job of an epoch ended (from the job.state_changed event, or the loop's reconciliation). */
  async onJobEnded(jobId: string, state: string, reason: string | null): Promise<void> {
    if (!TERMINAL_JOB_STATES.has(state as JobState)) return;
    const e = await this.epochsByJob.takeOr(jobId, () => podRepo.epochByJob(this.store.db, jobId));
    if (e?.status !== 'running') return;
    await this.endEpoch(e.pod_id, e.epoch_no, e.attempt, jobId, state, reason);
  }

  private async endEpoch(
    podId: string,
    epochNo: number,
    attempt: number,
    jobId: string | null,
    jobState: string,
    jobReason: string | null,
  ): Promise<void> {
    const now = this.clock.now();
    await this.store.write(async (tx) => {
      const ctx: Ctx = { tx, now, events: [], kill: [] };
      const e = await podRepo.epoch(tx, podId, epochNo);
      const pod = await podRepo.pod(tx, podId);
      // Only the epoch's current attempt (and job) may end it.
      if (!e || !pod || e.attempt !== attempt || e.job_id !== jobId) return;
      if (!(jobId === null ? e.status === 'launching' : e.status === 'running')) return;
      const config = parseConfig(pod);
      const end: EpochEnd = epochEnd({
        jobState,
        jobReason,
        gamesReceived: e.games_received,
        size: e.size,
        attempt: e.attempt,
        maxAttempts: config.max_attempts,
      });
      const from = [e.status];
      if (end.kind === 'retry') {
        const delay = retryDelayMs(e.attempt, config);
        await podRepo.updateEpochIf(tx, podId, epochNo, from, attempt, {
          status: 'retry_wait',
          next_retry_at: now + delay,
          last_error: end.reason,
          updated_at: now,
        });
        await this.trace(tx, podId, 'retry_scheduled', epochNo, pod.games_played, null, now, {
          attempt,
          reason: end.reason,
          retry_in_ms: delay,
        });
        ctx.events.push(epochFinished(pod.id, e, 'retry_wait', end.reason));
        await podRepo.updatePodIf(tx, podId, ['active'], { last_error: end.reason, updated_at: now });
      } else {
        const status: EpochStatus = end.kind === 'completed' ? 'completed' : end.kind;
        const error = end.kind === 'completed' ? null : end.reason;
        await podRepo.updateEpochIf(tx, podId, epochNo, from, attempt, {
          status,
          last_error: error,
          finished_at: now,
          updated_at: now,
        });
        await this.trace(tx, podId, `epoch_${status}`, epochNo, pod.games_played, pod.confidence, now, {
          attempt,
          games: e.games_received,
          size: e.size,
          ...(error ? { reason: error } : {}),
        });
        ctx.events.push(epochFinished(pod.id, e, status, error));
        if (pod.status === 'active' && pod.in_flight_epoch === epochNo)
          await this.releasePod(ctx, pod, config, end.kind === 'failed' ? error : null);
      }
      await this.flushEvents(ctx);
    });
  }

  /** An epoch ended: the pod is ready for the next one, or stops at its epoch cap. */
  private async releasePod(ctx: Ctx, pod: PodRow, config: PodConfig, error: string | null): Promise<void> {
    const patch = {
      in_flight_epoch: null,
      updated_at: ctx.now,
      ...(error ? { last_error: error, failed_epochs: pod.failed_epochs + 1 } : {}),
    };
    if (pod.epochs_since_reset >= config.max_epochs_per_pod) {
      await this.stopAtEpochCap(ctx, pod, config, patch);
      return;
    }
    await podRepo.updatePodIf(ctx.tx, pod.id, ['active'], { ...patch, status: 'ready' });
    ctx.events.push(statusEvent(pod, 'ready', error ? `epoch gave up: ${error}` : 'epoch finished'));
  }

  private async stopAtEpochCap(
    ctx: Ctx,
    pod: PodRow,
    config: PodConfig,
    patch: Record<string, unknown> = {},
  ): Promise<void> {
    await podRepo.updatePodIf(ctx.tx, pod.id, [pod.status], {
      ...patch,
      status: 'converged',
      stop_reason: 'max_epochs',
      in_flight_epoch: null,
      converged_at: ctx.now,
      expires_at: config.expire_after_s === null ? null : ctx.now + Math.round(config.expire_after_s * 1000),
      updated_at: ctx.now,
    });
    await this.trace(ctx.tx, pod.id, 'stopped', null, pod.games_played, pod.confidence, ctx.now, {
      reason: `max_epochs_per_pod (${config.max_epochs_per_pod}) reached`,
    });
    ctx.events.push(
      statusEvent(pod, 'converged', `max_epochs_per_pod (${config.max_epochs_per_pod}) reached`),
      event('pod.converged', pod.id, {
        pod_id: pod.id,
        stop_reason: 'max_epochs',
        games_played: pod.games_played,
        confidence: pod.confidence,
        ranking: pod.evaluation ? (JSON.parse(pod.evaluation) as Evaluation).ranking : [],
      }),
    );
  }

  /** Ends the pod's epoch in flight (if any) as `status`; its job is stopped after the commit. */
  private async stopInFlightEpoch(ctx: Ctx, pod: PodRow, status: EpochStatus, why: string): Promise<void> {
    if (pod.in_flight_epoch === null) return;
    const e = await podRepo.epoch(ctx.tx, pod.id, pod.in_flight_epoch);
    if (!e || !IN_FLIGHT_EPOCH.has(e.status as EpochStatus)) return;
    await podRepo.updateEpochIf(ctx.tx, pod.id, e.epoch_no, [e.status], e.attempt, {
      status,
      last_error: status === 'completed' ? null : why,
      next_retry_at: null,
      finished_at: ctx.now,
      updated_at: ctx.now,
    });
    ctx.events.push(epochFinished(pod.id, e, status, why));
    if (e.job_id) ctx.kill.push(e.job_id);
  }

  // ----- reset, archive, config and participant changes -----

  async reset(id: string, reason = 'requested'): Promise<PodView> {
    const kill = await this.store.write(async (tx) => {
      const ctx: Ctx = { tx, now: this.clock.now(), events: [], kill: [] };
      const pod = await podRepo.pod(tx, id);
      if (!pod) throw notFound('pod', id);
      if (pod.status === 'archived') throw conflict('POD_ARCHIVED', `pod ${id} is archived`);
      await this.resetInTx(ctx, pod, reason);
      await this.flushEvents(ctx);
      return ctx.kill;
    });
    for (const job of kill) await this.stopJob(job, 'pod reset');
    return this.get(id);
  }

  /**
   * Returns a pod to ready: the epoch in flight is cancelled, old evidence is decayed by
   * `evidence_decay`, and the epoch cap and adaptive sizes start over. The pod cannot converge
   * again before new games arrive.
   */
  private async resetInTx(ctx: Ctx, pod: PodRow, reason: string, config = parseConfig(pod)): Promise<void> {
    await this.stopInFlightEpoch(ctx, pod, 'cancelled', `pod reset: ${reason}`);
    await podRepo.decayEvidence(ctx.tx, pod.id, config.evidence_decay);
    const evaluation = await this.evaluateInTx(
      ctx.tx,
      { ...pod, reset_count: pod.reset_count + 1 },
      config,
      0,
    );
    await podRepo.updatePodIf(ctx.tx, pod.id, [pod.status], {
      status: 'ready',
      stop_reason: null,
      in_flight_epoch: null,
      epochs_since_reset: 0,
      last_epoch_size: null,
      games_since_reset: 0,
      reset_count: pod.reset_count + 1,
      confidence: evaluation.confidence,
      evaluation: JSON.stringify(evaluation),
      converged_at: null,
      expires_at: null,
      last_reset_at: ctx.now,
      updated_at: ctx.now,
    });
    await this.trace(ctx.tx, pod.id, 'reset', null, pod.games_played, evaluation.confidence, ctx.now, {
      reason,
      evidence_decay: config.evidence_decay,
    });
    ctx.events.push(
      event('pod.reset', pod.id, { pod_id: pod.id, reason, evidence_decay: config.evidence_decay }),
    );
    if (pod.status !== 'ready') ctx.events.push(statusEvent(pod, 'ready', `reset: ${reason}`));
  }

  async archive(id: string): Promise<PodView> {
    const kill = await this.store.write(async (tx) => {
      const ctx: Ctx = { tx, now: this.clock.now(), events: [], kill: [] };
      const pod = await podRepo.pod(tx, id);
      if (!pod) throw notFound('pod', id);
      if (pod.status === 'archived') return [];
      await this.stopInFlightEpoch(ctx, pod, 'cancelled', 'pod archived');
      await podRepo.updatePodIf(tx, id, [pod.status], {
        status: 'archived',
        in_flight_epoch: null,
        expires_at: null,
        archived_at: ctx.now,
        updated_at: ctx.now,
      });
      await this.trace(tx, id, 'archived', null, pod.games_played, pod.confidence, ctx.now, {});
      ctx.events.push(statusEvent(pod, 'archived', 'archived'));
      await this.flushEvents(ctx);
      return ctx.kill;
    });
    for (const job of kill) await this.stopJob(job, 'pod archived');
    return this.get(id);
  }

  /** A changed config makes a different experiment: the pod is reset (and keeps its identity in sync). */
  async updateConfig(id: string, patch: PodConfigInput): Promise<PodView> {
    const kill = await this.store.write(async (tx) => {
      const ctx: Ctx = { tx, now: this.clock.now(), events: [], kill: [] };
      const pod = await podRepo.pod(tx, id);
      if (!pod) throw notFound('pod', id);
      if (pod.status === 'archived') throw conflict('POD_ARCHIVED', `pod ${id} is archived`);
      const config = normalizeConfig({ ...parseConfig(pod), ...(patch as Partial<PodConfig>) });
      const participants = JSON.parse(pod.participants) as string[];
      const problems = definitionProblems(participants, config);
      if (problems.length > 0) throw invalid(problems);
      const hash = specHash(participants, pod.seed, config);
      if (hash === pod.spec_hash) return [];
      const other = await podRepo.podBySpec(tx, hash);
      if (other)
        throw conflict('POD_EXISTS', `pod ${other.id} already has these participants, seed and config`);
      await podRepo.updatePodIf(tx, id, [pod.status], {
        config: JSON.stringify(config),
        spec_hash: hash,
        updated_at: ctx.now,
      });
      await this.resetInTx(ctx, { ...pod, config: JSON.stringify(config) }, 'config changed', config);
      await this.flushEvents(ctx);
      return ctx.kill;
    });
    for (const job of kill) await this.stopJob(job, 'pod config changed');
    return this.get(id);
  }

  /** A participant's new model version resets every live pod it plays in. */
  async setModelVersion(participantId: string, version: string): Promise<ParticipantUpdateResponse> {
    const out = await this.store.write(async (tx) => {
      const ctx: Ctx = { tx, now: this.clock.now(), events: [], kill: [] };
      await podRepo.ensureParticipants(tx, [participantId], newRating(), ctx.now);
      const [before] = await podRepo.participants(tx, [participantId]);
      const previous = before?.model_version ?? null;
      const reset: string[] = [];
      if (previous !== version) {
        await podRepo.setModelVersion(tx, participantId, version, DEFAULT_SIGMA, ctx.now);
        for (const pod of await podRepo.livePodsOf(tx, participantId)) {
          await podRepo.setPodParticipantVersion(tx, pod.id, participantId, version);
          await this.resetInTx(
            ctx,
            pod,
            `participant ${participantId} model version ${previous ?? 'none'} -> ${version}`,
          );
          reset.push(pod.id);
        }
      }
      await this.flushEvents(ctx);
      return {
        kill: ctx.kill,
        response: {
          participant: participantId,
          model_version: version,
          previous_version: previous,
          reset_pods: reset,
        },
      };
    });
    for (const job of out.kill) await this.stopJob(job, 'participant model version changed');
    return out.response;
  }

  async leaderboard(limit = 1000): Promise<Leaderboard> {
    const rows = await podRepo.leaderboard(this.store.db, limit);
    return {
      model: 'plackett-luce (openskill, tau=0)',
      participants: rows.map((r, i) => ({
        rank: i + 1,
        participant: r.id,
        model_version: r.model_version,
        mu: Number(r.mu.toFixed(6)),
        sigma: Number(r.sigma.toFixed(6)),
        ordinal: Number(conservative(r).toFixed(6)),
        games: r.games,
      })),
    };
  }

  // ----- the loop's work -----

  /**
   * Launches epochs whose launch was interrupted (status launching for longer than the grace
   * period: the request or the process died) and retries whose backoff has passed.
   */
  async launchDue(): Promise<number> {
    const now = this.clock.now();
    let launched = 0;
    for (const e of await podRepo.epochsIn(this.store.db, 'launching', now - this.launchGraceMs, 100)) {
      const pod = await podRepo.pod(this.store.db, e.pod_id);
      if (!pod) continue;
      await this.launchEpoch(pod, e);
      launched++;
    }
    for (const e of await podRepo.retriesDue(this.store.db, now, 100)) {
      const claimed = await this.store.write(async (tx) => {
        if (!(await podRepo.claimRetry(tx, e, now))) return null;
        const pod = await podRepo.pod(tx, e.pod_id);
        if (!pod) return null;
        await this.trace(tx, e.pod_id, 'retry', e.epoch_no, pod.games_played, null, now, {
          attempt: e.attempt + 1,
        });
        await outboxRepo.append(
          tx,
          [
            event('pod.epoch_dispatched', e.pod_id, {
              pod_id: e.pod_id,
              epoch: e.epoch_no,
              size: e.size,
              attempt: e.attempt + 1,
              job_id: null,
            }),
          ],
          now,
        );
        return pod;
      });
      if (!claimed) continue;
      await this.launchEpoch(claimed, { ...e, status: 'launching', attempt: e.attempt + 1, job_id: null });
      launched++;
    }
    return launched;
  }

  /** Ends running epochs whose job has ended, in case its event was missed. */
  async reconcileRunning(): Promise<number> {
    let n = 0;
    const before = this.clock.now() - 1000;
    for (const e of await podRepo.epochsIn(this.store.db, 'running', before, 200)) {
      if (!e.job_id) continue;
      let job: { state: string; reason: string | null };
      try {
        job = await this.jobs.get(e.job_id);
      } catch (err) {
        if (err instanceof AppError && err.status === 404) job = { state: 'FAILED', reason: 'job not found' };
        else throw err;
      }
      if (!TERMINAL_JOB_STATES.has(job.state as JobState)) continue;
      await this.endEpoch(e.pod_id, e.epoch_no, e.attempt, e.job_id, job.state, job.reason);
      n++;
    }
    return n;
  }

  /** Resets converged pods whose `expire_after_s` has passed. */
  async expireDue(): Promise<number> {
    const now = this.clock.now();
    let n = 0;
    for (const p of await podRepo.expiredPods(this.store.db, now, 100)) {
      const done = await this.store.write(async (tx) => {
        const ctx: Ctx = { tx, now, events: [], kill: [] };
        const pod = await podRepo.pod(tx, p.id);
        if (pod?.status !== 'converged' || pod.expires_at === null || pod.expires_at > now) return false;
        await this.resetInTx(ctx, pod, 'expired');
        await this.flushEvents(ctx);
        return true;
      });
      if (done) n++;
    }
    return n;
  }

  private async flushEvents(ctx: Ctx): Promise<void> {
    await outboxRepo.append(ctx.tx, ctx.events.splice(0), ctx.now);
  }

  private async stopJob(jobId: string, reason: string): Promise<void> {
    try {
      await this.jobs.terminate(jobId, reason);
    } catch (err) {
      this.log.warn({ err, job: jobId }, 'stopping a pod epoch job failed');
    }
  }
}

function refuseUnlessReady(pod: PodRow): void {
  switch (pod.status) {
    case 'ready':
      return;
    case 'archived':
      throw conflict('POD_ARCHIVED', `pod ${pod.id} is archived`);
    case 'converged':
      throw conflict(
        'POD_CONVERGED',
        pod.stop_reason === 'max_epochs'
          ? `pod ${pod.id} stopped at max_epochs_per_pod and is not simulated again`
          : `pod ${pod.id} has converged and is not simulated again`,
      );
    default:
      throw conflict('EPOCH_IN_FLIGHT', `pod ${pod.id} has epoch ${pod.in_flight_epoch ?? '?'} in flight`);
  }
}

function statusEvent(pod: PodRow, status: PodStatus, reason: string): NewEvent {
  return event('pod.status_changed', pod.id, {
    pod_id: pod.id,
    status,
    previous: pod.status,
    reason,
    dispatchable: status === 'ready',
  });
}

function epochFinished(podId: string, e: EpochRow, outcome: string, reason: string | null): NewEvent {
  return event('pod.epoch_finished', podId, {
    pod_id: podId,
    epoch: e.epoch_no,
    outcome,
    attempt: e.attempt,
    games: e.games_received,
    reason,
  });
}
