import type { Principal } from '../auth/model.js';
import { event, type NewEvent } from '../events/catalog.js';
import { outboxRepo } from '../events/outbox-repo.js';
import type { Clock } from '../shared/clock.js';
import { AppError, conflict, type FieldError, invalid, notFound } from '../shared/errors.js';
import type { Executor, Store } from '../store/database.js';
import { appendAudit, knownAuditHead, type RequestMeta } from './audit-service.js';
import { type CommandRow, commandRepo } from './command-repo.js';
import type { CommandWaiters, Reservation } from './command-waiters.js';
import {
  type CommandType,
  commandAllowed,
  type RunStatus,
  statusAfterAck,
  TERMINATE_REASON_MAX,
  TUNABLES,
} from './model.js';
import { runRepo } from './run-repo.js';
import { actorOf } from './run-service.js';
import type { CommandEnvelope, CommandView } from './schemas.js';
import { commandView, statusEvent } from './views.js';

export interface CommandPolicy {
  /** A delivered command not acknowledged within this is delivered again. */
  visibilityTimeoutMs: number;
  /**
   * Longest a long-poll sleeps before looking at the store again. A write on this process wakes
   * it at once; this bounds the delay for a write made by another replica.
   */
  recheckMs: number;
}

/** Per-type payload rules exactly as the orchestrator seed states them; every violation listed. */
export function validatePayload(type: CommandType, payload: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  const unknownFields = (allowed: readonly string[]) => {
    for (const k of Object.keys(payload))
      if (!allowed.includes(k))
        errors.push({
          field: `payload.${k}`,
          code: 'UNKNOWN_FIELD',
          message: `is not a field of a ${type} payload`,
        });
  };
  if (type === 'tune') {
    unknownFields([...Object.keys(TUNABLES), 'notes']);
    let tunables = 0;
    for (const [name, range] of Object.entries(TUNABLES)) {
      const v = payload[name];
      if (v === undefined) continue;
      tunables += 1;
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        errors.push({ field: `payload.${name}`, code: 'INVALID_TYPE', message: 'must be a number' });
        continue;
      }
      const low = range.minExclusive ? v <= range.min : v < range.min;
      if (low || v > range.max)
        errors.push({
          field: `payload.${name}`,
          code: 'OUT_OF_RANGE',
          message: `must be ${range.minExclusive ? '>' : '>='} ${range.min} and <= ${range.max}`,
        });
    }
    if (payload.notes !== undefined && typeof payload.notes !== 'string')
      errors.push({ field: 'payload.notes', code: 'INVALID_TYPE', message: 'must be a string' });
    if (tunables === 0)
      errors.push({
        field: 'payload',
        code: 'NO_TUNABLE',
        message: `a tune command needs at least one of ${Object.keys(TUNABLES).join(', ')}`,
      });
  } else if (type === 'pause' || type === 'resume') {
    unknownFields([]);
  } else {
    unknownFields(['reason', 'final_checkpoint']);
    const reason = payload.reason;
    if (reason === undefined)
      errors.push({
        field: 'payload.reason',
        code: 'REQUIRED',
        message: 'a terminate command needs a reason',
      });
    else if (typeof reason !== 'string')
      errors.push({ field: 'payload.reason', code: 'INVALID_TYPE', message: 'must be a string' });
    else if (reason.length === 0 || reason.length > TERMINATE_REASON_MAX)
      errors.push({
        field: 'payload.reason',
        code: 'INVALID_LENGTH',
        message: `must be 1 to ${TERMINATE_REASON_MAX} characters`,
      });
    if (payload.final_checkpoint !== undefined && typeof payload.final_checkpoint !== 'boolean')
      errors.push({ field: 'payload.final_checkpoint', code: 'INVALID_TYPE', message: 'must be a boolean' });
  }
  return errors;
}

/**
 * Control commands: accepted into the command log (with an audit entry), delivered by
 * long-poll at least once, acknowledged by the learner. Acknowledgement moves the run.
 */
export class CommandService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    /** The long-polls waiting for commands (tests look at them). */
    readonly waiters: CommandWaiters,
    private readonly policy: CommandPolicy,
  ) {}

  /**
   * 202 with the new command, or 200 with the stored one for a repeated id. When a learner's
   * long-poll is waiting, the command is handed to it: the delivery is stamped in the same
   * insert and the poll gets the row the moment the write commits.
   */
  async issue(
    runId: string,
    env: CommandEnvelope,
    meta: RequestMeta | null,
  ): Promise<{ created: boolean; command: CommandView }> {
    const now = this.clock.now();
    const payload = env.payload ?? {};
    const handoff: { reservation: Reservation | null } = { reservation: null };
    let result: { created: boolean; row: CommandRow };
    try {
      result = await this.store.write(async (tx) => {
        const context = await commandRepo.issueContext(tx, runId, env.id);
        if (context.runStatus === null) throw notFound('run', runId);
        if (context.takenBy !== null) {
          if (context.takenBy !== runId)
            throw conflict('COMMAND_ID_IN_USE', `command id ${env.id} belongs to another run`);
          const existing = await commandRepo.get(tx, env.id);
          if (existing) return { created: false, row: existing };
        }
        const errors = validatePayload(env.type, payload);
        if (errors.length > 0) throw invalid(errors, `${env.type} command is invalid`);
        const allowed = commandAllowed(env.type, context.runStatus as RunStatus);
        if (!allowed.ok)
          throw new AppError(422, 'INVALID_STATE_TRANSITION', `${env.type} refused: ${allowed.why}`, [
            { field: 'type', code: 'INVALID_STATE_TRANSITION', message: allowed.why },
          ]);
        handoff.reservation ??= this.waiters.reserve(runId);
        const handed = handoff.reservation !== null;
        const row: Omit<CommandRow, 'seq'> = {
          id: env.id,
          run_id: runId,
          type: env.type,
          payload: JSON.stringify(payload),
          actor_type: env.actor.type,
          actor_id: env.actor.id,
          issued_at: Date.parse(env.issued_at),
          created_at: now,
          delivered_at: handed ? now : null,
          acknowledged_at: null,
          delivery_count: handed ? 1 : 0,
          visible_at: handed ? now + this.policy.visibilityTimeoutMs : now,
        };
        await commandRepo.insert(tx, row);
        await outboxRepo.append(
          tx,
          [
            event('command.issued', runId, {
              run_id: runId,
              command_id: env.id,
              type: env.type,
              actor: env.actor.id,
            }),
          ],
          now,
        );
        knownAuditHead(tx, context.auditHead);
        await appendAudit(
          tx,
          {
            run_id: runId,
            action: `command.${env.type}`,
            actor: env.actor,
            envelope: { ...env, payload },
            request: meta,
          },
          now,
        );
        return { created: true, row: { ...row, seq: 0 } };
      });
    } catch (err) {
      handoff.reservation?.release();
      throw err;
    }
    const { reservation } = handoff;
    if (!result.created) {
      reservation?.release();
    } else if (reservation === null) {
      this.waiters.wake([runId]);
    } else if (!reservation.deliver(result.row)) {
      // The poll went away between the insert and the commit: deliverable again at once.
      await commandRepo.undoHandoff(this.store.db, env.id, now);
      this.waiters.wake([runId]);
      const row = await commandRepo.get(this.store.db, env.id);
      if (row) result = { created: true, row };
    }
    return { created: result.created, command: commandView(result.row) };
  }

  /**
   * Long-poll: the oldest deliverable command the moment there is one (handed over by the
   * write, see `issue`), or null when `waitMs` passes. A delivery is claimed atomically, so
   * racing polls never both take it; an unacknowledged one becomes deliverable again after the
   * visibility timeout.
   */
  async next(runId: string, waitMs: number, signal?: AbortSignal): Promise<CommandView | null> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (signal?.aborted) return null;
      const seen = this.waiters.generation;
      // Claim first: an unknown run has nothing to claim, and is found out by the same call.
      const now = this.clock.now();
      const poll = await commandRepo.claimNext(
        this.store.db,
        runId,
        now,
        now + this.policy.visibilityTimeoutMs,
      );
      if (poll.claimed) return commandView(poll.claimed);
      if (!poll.runExists) throw notFound('run', runId);
      const visibleAt = poll.nextVisibleAt;
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted) return null;
      const untilVisible = visibleAt === null ? left : Math.max(1, visibleAt - this.clock.now());
      const handed = await this.waiters.wait(
        runId,
        Math.min(left, untilVisible, this.policy.recheckMs),
        signal,
        seen,
      );
      if (handed) return commandView(handed);
    }
  }

  /** Stamps acknowledged_at (idempotent), mirrors it in the audit log and moves the run. */
  async ack(
    runId: string,
    commandId: string,
    principal: Principal | null,
    meta: RequestMeta | null,
  ): Promise<CommandView> {
    const now = this.clock.now();
    const row = await this.store.write(async (tx) => {
      const { command: cmd, runStatus, auditHead } = await commandRepo.ackContext(tx, commandId);
      if (!cmd || cmd.run_id !== runId) throw notFound('command', commandId);
      if (cmd.acknowledged_at !== null) return cmd;
      knownAuditHead(tx, auditHead);
      await commandRepo.acknowledge(tx, commandId, now);
      const acked = { ...cmd, acknowledged_at: now, delivered_at: cmd.delivered_at ?? now };
      const events: NewEvent[] = [
        event('command.acknowledged', runId, { run_id: runId, command_id: commandId, type: cmd.type }),
      ];
      // Only a command that moves the run needs the whole run (for its status event).
      const moves =
        runStatus !== null && statusAfterAck(cmd.type as CommandType, runStatus as RunStatus) !== null;
      const run = moves ? await runRepo.get(tx, runId) : undefined;
      if (run) {
        const status = statusAfterAck(cmd.type as CommandType, run.status as RunStatus);
        if (status) {
          await runRepo.update(tx, runId, { status, updated_at: now });
          events.push(
            event('run.status', runId, statusEvent({ ...run, status }, run, `command.${cmd.type}`)),
          );
        }
      }
      await outboxRepo.append(tx, events, now);
      await appendAudit(
        tx,
        {
          run_id: runId,
          action: 'command.ack',
          actor: actorOf(principal),
          envelope: {
            command_id: commandId,
            type: cmd.type,
            delivered_at: acked.delivered_at,
            acknowledged_at: now,
          },
          request: meta,
        },
        now,
      );
      return acked;
    });
    return commandView(row);
  }

  async list(runId: string): Promise<{ commands: CommandView[] }> {
    await this.mustExist(this.store.db, runId);
    return { commands: (await commandRepo.listForRun(this.store.db, runId)).map(commandView) };
  }

  private async mustExist(db: Executor, runId: string): Promise<void> {
    if (!(await runRepo.get(db, runId))) throw notFound('run', runId);
  }
}
