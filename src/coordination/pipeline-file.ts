/**
 * The pipeline file: YAML or JSON, validated with field errors (every problem listed, paths like
 * `stages.training.command`) and normalised into a PipelineSpec. Pure: no I/O.
 */
import { Type } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { fieldErrors } from '../http/validation.js';
import { parseDuration } from '../shared/duration.js';
import type { FieldError } from '../shared/errors.js';
import {
  definedStages,
  PIPELINE_STAGES,
  type PipelineSpec,
  type PipelineStage,
  placeholderError,
  placeholdersIn,
  type StageTemplate,
} from './pipeline-model.js';

const StringMap = Type.Record(
  Type.String({ minLength: 1, maxLength: 256 }),
  Type.String({ maxLength: 65536 }),
);

const StageSchema = Type.Object(
  {
    command: Type.Optional(Type.Array(Type.String({ maxLength: 65536 }), { minItems: 1, maxItems: 4096 })),
    external: Type.Optional(Type.Boolean()),
    env: Type.Optional(StringMap),
    resources: Type.Optional(
      Type.Object(
        {
          cpu: Type.Optional(Type.Number({ minimum: 0 })),
          memory_mb: Type.Optional(Type.Integer({ minimum: 0 })),
          gpu: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
    outputs: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), { maxItems: 1000 })),
    task_type: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9_-]+$' })),
    max_retries_failure: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
  },
  { additionalProperties: false },
);

export const PipelineFileSchema = Type.Object(
  {
    config_key: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' }),
    description: Type.Optional(Type.String({ maxLength: 4096 })),
    work_dir: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    circuit_breaker: Type.Optional(
      Type.Object(
        {
          failure_threshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          cooldown: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Number({ minimum: 0 })])),
        },
        { additionalProperties: false },
      ),
    ),
    stages: Type.Object(
      {
        selfplay: Type.Optional(StageSchema),
        data_sync: Type.Optional(StageSchema),
        npz_export: Type.Optional(StageSchema),
        training: Type.Optional(StageSchema),
        evaluation: Type.Optional(StageSchema),
        promotion: Type.Optional(StageSchema),
      } satisfies Record<PipelineStage, unknown>,
      { additionalProperties: false, minProperties: 1 },
    ),
  },
  { additionalProperties: false },
);

const ajv = new Ajv({ allErrors: true, strict: false });
const check = ajv.compile(PipelineFileSchema);

export interface PipelineDefaults {
  failureThreshold: number;
  cooldownMs: number;
}

type Raw = {
  config_key: string;
  description?: string;
  work_dir?: string;
  circuit_breaker?: { failure_threshold?: number; cooldown?: string | number };
  stages: Partial<
    Record<
      PipelineStage,
      {
        command?: string[];
        external?: boolean;
        env?: Record<string, string>;
        resources?: StageTemplate['resources'];
        outputs?: string[];
        task_type?: string;
        max_retries_failure?: number;
      }
    >
  >;
};

/** Parses and validates a pipeline file's text (JSON when it starts with `{`, YAML otherwise). */
export function parsePipelineFile(
  text: string,
  defaults: PipelineDefaults,
): { ok: true; spec: PipelineSpec } | { ok: false; errors: FieldError[] } {
  let raw: unknown;
  try {
    raw = text.trimStart().startsWith('{') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    return { ok: false, errors: [{ field: '', code: 'PARSE_ERROR', message: (err as Error).message }] };
  }
  return validatePipeline(raw, defaults);
}

export function validatePipeline(
  raw: unknown,
  defaults: PipelineDefaults,
): { ok: true; spec: PipelineSpec } | { ok: false; errors: FieldError[] } {
  if (!check(raw)) return { ok: false, errors: fieldErrors(check.errors ?? [], undefined) };
  const r = raw as Raw;
  const errors: FieldError[] = [];
  let cooldownMs = defaults.cooldownMs;
  if (r.circuit_breaker?.cooldown !== undefined) {
    try {
      cooldownMs = parseDuration(r.circuit_breaker.cooldown);
    } catch (err) {
      errors.push({
        field: 'circuit_breaker.cooldown',
        code: 'INVALID_VALUE',
        message: (err as Error).message,
      });
    }
  }
  const stages: PipelineSpec['stages'] = {};
  for (const stage of PIPELINE_STAGES) {
    const s = r.stages[stage];
    if (!s) continue;
    const field = `stages.${stage}`;
    if (s.external && s.command)
      errors.push({
        field: `${field}.command`,
        code: 'INVALID_VALUE',
        message: 'an external stage has no command',
      });
    if (!s.external && !s.command)
      errors.push({
        field: `${field}.command`,
        code: 'REQUIRED',
        message: 'is required (or set external: true)',
      });
    stages[stage] = {
      command: s.external ? null : (s.command ?? null),
      env: s.env ?? {},
      resources: s.resources ?? {},
      outputs: s.outputs ?? [],
      task_type: s.task_type ?? stage,
      max_retries_failure: s.max_retries_failure ?? 0,
    };
  }
  const order = definedStages({ stages });
  for (const stage of order) {
    const t = stages[stage];
    if (!t) continue;
    const texts: Array<[string, string]> = [
      ...(t.command ?? []).map((c, i): [string, string] => [`stages.${stage}.command.${i}`, c]),
      ...Object.entries(t.env).map(([k, v]): [string, string] => [`stages.${stage}.env.${k}`, v]),
      ...t.outputs.map((o, i): [string, string] => [`stages.${stage}.outputs.${i}`, o]),
    ];
    for (const [field, text] of texts)
      for (const name of placeholdersIn(text)) {
        const why = placeholderError(name, stage, order);
        if (why) errors.push({ field, code: 'UNKNOWN_PLACEHOLDER', message: why });
      }
  }
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    spec: {
      config_key: r.config_key,
      description: r.description ?? null,
      work_dir: r.work_dir ?? null,
      circuit_breaker: {
        failure_threshold: r.circuit_breaker?.failure_threshold ?? defaults.failureThreshold,
        cooldown_ms: cooldownMs,
      },
      stages,
    },
  };
}
