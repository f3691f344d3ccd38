/**
 * Pipelines (pure).
 *
 * Glossary:
 * - pipeline: one start of a config's chain of stages (config key e.g. `hex8_2p`); the newest
 *   pipeline of a config is the one events for that config drive.
 * - stage: IDLE → SELFPLAY → DATA_SYNC → NPZ_EXPORT → TRAINING → EVALUATION → PROMOTION →
 *   COMPLETE. The working stages are the lower-case names of the stage events
 *   (`pipeline.<stage>.completed|failed`, `model.promoted`); a pipeline file may leave stages out.
 * - stage template: the job a stage runs (argv with `{placeholders}`, env, resources), or
 *   `external: true` when an outside producer publishes the stage's completion.
 * - stage attempt: one try of a stage; a failure retries it until the circuit breaker opens.
 * - outputs: files a stage produced; with a sha256 they are verified before the next stage.
 */
import { PIPELINE_STAGES, type PipelineStage } from '../events/stage-events.js';
import type { BreakerConfig } from './circuit-breaker.js';

export { PIPELINE_STAGES, type PipelineStage };

export const PIPELINE_PHASES = [
  'IDLE',
  'SELFPLAY',
  'DATA_SYNC',
  'NPZ_EXPORT',
  'TRAINING',
  'EVALUATION',
  'PROMOTION',
  'COMPLETE',
] as const;
export type PipelinePhase = (typeof PIPELINE_PHASES)[number];

export const PIPELINE_STATUSES = ['running', 'breaker_open', 'completed', 'stopped'] as const;
export type PipelineStatus = (typeof PIPELINE_STATUSES)[number];
/** A config has at most one active pipeline. */
export const ACTIVE_STATUSES: ReadonlySet<string> = new Set(['running', 'breaker_open']);

export const STAGE_STATUSES = [
  'launching',
  'waiting',
  'running',
  'succeeded',
  'failed',
  'cancelled',
] as const;
export type StageStatus = (typeof STAGE_STATUSES)[number];

export interface StageTemplate {
  /** argv; null for an external stage. */
  command: string[] | null;
  env: Record<string, string>;
  resources: { cpu?: number; memory_mb?: number; gpu?: number };
  /** Declared output paths (templates), relative to the work dir unless absolute. */
  outputs: string[];
  /** The task type `can_spawn` limits it under (defaults to the stage name). */
  task_type: string;
  max_retries_failure: number;
}

export interface PipelineSpec {
  config_key: string;
  description: string | null;
  /** Where stage jobs run and write (default: <data dir>/pipelines/<config>/<pipeline id>). */
  work_dir: string | null;
  circuit_breaker: BreakerConfig;
  stages: Partial<Record<PipelineStage, StageTemplate>>;
}

export const phaseOf = (stage: PipelineStage): PipelinePhase => stage.toUpperCase() as PipelinePhase;

export function stageOf(phase: string): PipelineStage | null {
  const s = phase.toLowerCase();
  return (PIPELINE_STAGES as readonly string[]).includes(s) ? (s as PipelineStage) : null;
}

/** The stages a spec runs, in pipeline order. */
export function definedStages(spec: Pick<PipelineSpec, 'stages'>): PipelineStage[] {
  return PIPELINE_STAGES.filter((s) => spec.stages[s] !== undefined);
}

/** The stage after `stage` in this spec, or null when it was the last (the pipeline completes). */
export function nextStage(spec: Pick<PipelineSpec, 'stages'>, stage: PipelineStage): PipelineStage | null {
  const stages = definedStages(spec);
  const i = stages.indexOf(stage);
  return stages[i + 1] ?? null;
}

/** The stage whose result events end, e.g. `pipeline.training.completed` → training. */
export function stageOfEventType(type: string): { stage: PipelineStage; success: boolean } | null {
  if (type === 'model.promoted') return { stage: 'promotion', success: true };
  const m = /^pipeline\.([a-z_]+)\.(completed|failed)$/.exec(type);
  if (!m) return null;
  const stage = stageOf(m[1] ?? '');
  return stage ? { stage, success: m[2] === 'completed' } : null;
}

/** Placeholders every stage can use; `{<stage>.<field>}` and `{prev.<field>}` name earlier results. */
export const BASE_PLACEHOLDERS = [
  'config_key',
  'pipeline_id',
  'work_dir',
  'stage',
  'attempt',
  'result_file',
] as const;

const PLACEHOLDER = /\{([A-Za-z0-9_.]+)\}/g;

/** The placeholder names a template string uses. */
export function placeholdersIn(text: string): string[] {
  return [...text.matchAll(PLACEHOLDER)].map((m) => m[1] ?? '');
}

/**
 * Why a placeholder cannot be used by `stage`, or null if it can: base names, or `prev.<field>`
 * / `<earlier stage>.<field>` (`output` is the first output's path).
 */
export function placeholderError(name: string, stage: PipelineStage, stages: PipelineStage[]): string | null {
  if ((BASE_PLACEHOLDERS as readonly string[]).includes(name)) return null;
  const [head, field, ...rest] = name.split('.');
  if (!head || !field || rest.length > 0)
    return `unknown placeholder {${name}} (use ${BASE_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}, {prev.<field>} or {<stage>.<field>})`;
  if (head === 'prev') {
    return stages.indexOf(stage) > 0
      ? null
      : `{${name}}: ${stage} is the first stage, it has no previous stage`;
  }
  const earlier = stageOf(head);
  if (!earlier) return `unknown placeholder {${name}}: ${head} is not a stage`;
  if (!stages.includes(earlier) || stages.indexOf(earlier) >= stages.indexOf(stage))
    return `{${name}}: ${head} is not a stage before ${stage} in this pipeline`;
  return null;
}

export interface RenderContext {
  base: Record<(typeof BASE_PLACEHOLDERS)[number], string>;
  /** Completion payloads of earlier stages (the pipeline's outputs). */
  results: Partial<Record<PipelineStage, Record<string, unknown>>>;
  prev: PipelineStage | null;
}

function resultField(result: Record<string, unknown> | undefined, field: string): string | null {
  if (!result) return null;
  if (field === 'output') {
    const outs = result.outputs;
    const first = Array.isArray(outs) ? (outs[0] as { path?: unknown } | undefined) : undefined;
    return typeof first?.path === 'string' ? first.path : null;
  }
  const v = result[field];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}

/** Fills a template string; throws with the placeholder's name when it has no value. */
export function render(text: string, ctx: RenderContext): string {
  return text.replace(PLACEHOLDER, (_all, name: string) => {
    if (name in ctx.base) return ctx.base[name as keyof RenderContext['base']];
    const [head = '', field = ''] = name.split('.');
    const stage = head === 'prev' ? ctx.prev : stageOf(head);
    const v = stage ? resultField(ctx.results[stage], field) : null;
    if (v === null) throw new Error(`placeholder {${name}} has no value`);
    return v;
  });
}
