import { createHash } from 'node:crypto';
import { type EventPayloads, event, type StoredEvent } from '../events/catalog.js';
import { outboxRepo } from '../events/outbox-repo.js';
import type { Clock } from '../shared/clock.js';
import { toIso } from '../shared/clock.js';
import { AppError, conflict, invalid, notFound } from '../shared/errors.js';
import type { Store, Tx } from '../store/database.js';
import { isModelState, type ModelState, transitionError } from './model-lifecycle.js';
import { type ModelRow, modelRepo } from './model-repo.js';

export interface ModelView {
  model_id: string;
  config_key: string;
  path: string | null;
  state: ModelState;
  metrics: Record<string, number>;
  previous_model_id: string | null;
  pipeline_id: string | null;
  reason: string | null;
  created_at: string | null;
  updated_at: string | null;
  promoted_at: string | null;
}

export interface RegisterModel {
  config_key: string;
  model_id?: string | undefined;
  path?: string | undefined;
  state?: string | undefined;
  metrics?: Record<string, number> | undefined;
  pipeline_id?: string | undefined;
}

/** A model's id when its producer gave none: stable for one config and path, so events agree. */
export function deriveModelId(configKey: string, path: string): string {
  return `mdl_${createHash('sha256').update(`${configKey}\0${path}`).digest('hex').slice(0, 24)}`;
}

export function modelView(r: ModelRow): ModelView {
  return {
    model_id: r.id,
    config_key: r.config_key,
    path: r.path,
    state: r.state as ModelState,
    metrics: JSON.parse(r.metrics) as Record<string, number>,
    previous_model_id: r.previous_model_id,
    pipeline_id: r.pipeline_id,
    reason: r.reason,
    created_at: toIso(r.created_at),
    updated_at: toIso(r.updated_at),
    promoted_at: toIso(r.promoted_at),
  };
}

/**
 * Model lifecycle use cases: register, list, the production model of a config, promote,
 * rollback; and the reactions to the stage events (TRAINING_COMPLETED registers the model as
 * evaluating, EVALUATION_COMPLETED stages or archives it, MODEL_PROMOTED makes it production).
 */
export class ModelService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async register(input: RegisterModel): Promise<ModelView> {
    const state = input.state ?? 'training';
    if (!isModelState(state) || state === 'production' || state === 'rolled_back')
      throw invalid([
        {
          field: 'state',
          code: 'INVALID_VALUE',
          message: 'must be training, evaluating, staging or archived (production comes by promotion)',
        },
      ]);
    if (!input.model_id && !input.path)
      throw invalid([{ field: 'path', code: 'REQUIRED', message: 'a model needs a model_id or a path' }]);
    const id = input.model_id ?? deriveModelId(input.config_key, input.path ?? '');
    return this.store.write(async (tx) => {
      if (await modelRepo.get(tx, id)) throw conflict('MODEL_EXISTS', `model ${id} is already registered`);
      await this.insert(tx, { ...input, model_id: id }, state, this.clock.now());
      return modelView(await this.mustGet(tx, id));
    });
  }

  async get(id: string): Promise<ModelView> {
    return modelView(await this.mustGet(this.store.db, id));
  }

  async list(q: {
    config?: string | undefined;
    state?: string | undefined;
    limit?: number | undefined;
  }): Promise<ModelView[]> {
    const rows = await modelRepo.list(this.store.db, {
      config_key: q.config,
      state: q.state,
      limit: q.limit ?? 100,
    });
    return rows.map(modelView);
  }

  async production(config: string): Promise<ModelView> {
    const row = await modelRepo.production(this.store.db, config);
    if (!row)
      throw new AppError(404, 'PRODUCTION_MODEL_NOT_FOUND', `config ${config} has no production model`);
    return modelView(row);
  }

  /** Promotes a model by request: it becomes production and MODEL_PROMOTED is published. */
  async promote(id: string, reason: string | null): Promise<ModelView> {
    return this.store.write(async (tx) => {
      const m = await this.mustGet(tx, id);
      const previous = await this.applyPromotion(tx, m, reason, this.clock.now());
      if (previous !== undefined)
        await outboxRepo.append(
          tx,
          [
            event('model.promoted', m.config_key, {
              config_key: m.config_key,
              model_id: m.id,
              ...(m.path ? { model_path: m.path } : {}),
              previous_model_id: previous,
              ...(reason ? { reason } : {}),
            }),
          ],
          this.clock.now(),
        );
      return modelView(await this.mustGet(tx, id));
    });
  }

  /** The production model → rolled_back; the production model before it → production again. */
  async rollback(
    id: string,
    reason: string | null,
  ): Promise<{ rolled_back: ModelView; production: ModelView }> {
    return this.store.write(async (tx) => {
      const now = this.clock.now();
      const m = await this.mustGet(tx, id);
      if (m.state !== 'production')
        throw conflict(
          'MODEL_NOT_PRODUCTION',
          `model ${id} is ${m.state}; only the production model can be rolled back`,
        );
      if (!m.previous_model_id)
        throw conflict('NO_PREVIOUS_MODEL', `config ${m.config_key} had no production model before ${id}`);
      const prev = await modelRepo.get(tx, m.previous_model_id);
      if (!prev) throw conflict('NO_PREVIOUS_MODEL', `the previous model ${m.previous_model_id} is gone`);
      await this.transition(tx, m, 'rolled_back', reason ?? 'rolled back', now);
      await this.transition(tx, prev, 'production', `restored by the rollback of ${id}`, now, {
        promoted_at: now,
      });
      await outboxRepo.append(
        tx,
        [
          event('model.rolled_back', m.config_key, {
            model_id: id,
            config_key: m.config_key,
            restored_model_id: prev.id,
            reason,
          }),
        ],
        now,
      );
      return {
        rolled_back: modelView(await this.mustGet(tx, id)),
        production: modelView(await this.mustGet(tx, prev.id)),
      };
    });
  }

  /** Reacts to TRAINING_COMPLETED, EVALUATION_COMPLETED and MODEL_PROMOTED (idempotent). */
  readonly onStageEvent = async (ev: StoredEvent): Promise<void> => {
    const now = this.clock.now();
    if (ev.type === 'pipeline.training.completed') {
      const p = ev.payload as EventPayloads['pipeline.training.completed'];
      const id = p.model_id ?? deriveModelId(p.config_key, p.model_path);
      await this.store.write(async (tx) => {
        if (await modelRepo.get(tx, id)) return;
        await this.insert(
          tx,
          {
            config_key: p.config_key,
            model_id: id,
            path: p.model_path,
            metrics: p.metrics,
            pipeline_id: p.pipeline_id,
          },
          'evaluating',
          now,
        );
      });
    } else if (ev.type === 'pipeline.evaluation.completed') {
      const p = ev.payload as EventPayloads['pipeline.evaluation.completed'];
      await this.store.write(async (tx) => {
        const m = await this.find(tx, p.config_key, p.model_id, p.model_path);
        if (!m || (m.state !== 'training' && m.state !== 'evaluating')) return;
        const to: ModelState = p.passed === false ? 'archived' : 'staging';
        const metrics = { ...(JSON.parse(m.metrics) as Record<string, number>), ...(p.metrics ?? {}) };
        if (p.win_rate !== undefined) metrics.win_rate = p.win_rate;
        if (p.elo !== undefined) metrics.elo = p.elo;
        await this.transition(
          tx,
          m,
          to,
          p.passed === false ? 'evaluation failed' : 'evaluation passed',
          now,
          {
            metrics: JSON.stringify(metrics),
          },
        );
      });
    } else if (ev.type === 'model.promoted') {
      const p = ev.payload as EventPayloads['model.promoted'];
      await this.store.write(async (tx) => {
        let m = await modelRepo.get(tx, p.model_id);
        if (!m) {
          await this.insert(
            tx,
            {
              config_key: p.config_key,
              model_id: p.model_id,
              path: p.model_path,
              metrics: p.metrics,
              pipeline_id: p.pipeline_id,
            },
            'staging',
            now,
          );
          m = await this.mustGet(tx, p.model_id);
        }
        if (m.config_key !== p.config_key) return;
        // A promotion event for a model that moved on since (rolled back, archived) is history.
        if (m.state === 'rolled_back' || m.state === 'archived') return;
        await this.applyPromotion(tx, m, p.reason ?? 'MODEL_PROMOTED', now);
      });
    }
  };

  /**
   * Makes `m` the production model of its config; the one before is archived and remembered.
   * Returns the previous production model's id (null: none), or undefined when `m` already was.
   */
  private async applyPromotion(
    tx: Tx,
    m: ModelRow,
    reason: string | null,
    now: number,
  ): Promise<string | null | undefined> {
    if (m.state === 'production') return undefined;
    const why = transitionError(m.state as ModelState, 'production');
    if (why) throw conflict('INVALID_MODEL_TRANSITION', why);
    const current = await modelRepo.production(tx, m.config_key);
    if (current) await this.transition(tx, current, 'archived', `superseded by ${m.id}`, now);
    await this.transition(tx, m, 'production', reason, now, {
      promoted_at: now,
      previous_model_id: current?.id ?? null,
    });
    return current?.id ?? null;
  }

  private async transition(
    tx: Tx,
    m: ModelRow,
    to: ModelState,
    reason: string | null,
    now: number,
    extra: Partial<Pick<ModelRow, 'promoted_at' | 'previous_model_id' | 'metrics'>> = {},
  ): Promise<void> {
    const why = transitionError(m.state as ModelState, to);
    if (why) throw conflict('INVALID_MODEL_TRANSITION', why);
    await modelRepo.update(tx, m.id, { state: to, reason, updated_at: now, ...extra });
    await outboxRepo.append(
      tx,
      [
        event('model.state_changed', m.id, {
          model_id: m.id,
          config_key: m.config_key,
          state: to,
          previous: m.state,
          reason,
        }),
      ],
      now,
    );
  }

  private async insert(
    tx: Tx,
    input: RegisterModel & { model_id: string },
    state: ModelState,
    now: number,
  ): Promise<void> {
    await modelRepo.insert(tx, {
      id: input.model_id,
      config_key: input.config_key,
      path: input.path ?? null,
      state,
      metrics: JSON.stringify(input.metrics ?? {}),
      previous_model_id: null,
      pipeline_id: input.pipeline_id ?? null,
      reason: null,
      created_at: now,
      updated_at: now,
      promoted_at: null,
    });
    await outboxRepo.append(
      tx,
      [
        event('model.registered', input.model_id, {
          model_id: input.model_id,
          config_key: input.config_key,
          path: input.path ?? null,
          state,
        }),
      ],
      now,
    );
  }

  private async find(
    tx: Tx,
    config: string,
    id: string | undefined,
    path: string | undefined,
  ): Promise<ModelRow | undefined> {
    if (id) return modelRepo.get(tx, id);
    if (path)
      return (await modelRepo.get(tx, deriveModelId(config, path))) ?? modelRepo.findByPath(tx, config, path);
    return undefined;
  }

  private async mustGet(db: Store['db'] | Tx, id: string): Promise<ModelRow> {
    const m = await modelRepo.get(db, id);
    if (!m) throw notFound('model', id);
    return m;
  }
}
