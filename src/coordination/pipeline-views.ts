import { toIso } from '../shared/clock.js';
import { PIPELINE_STAGES, type PipelineSpec } from './pipeline-model.js';
import type { PipelineRow, StageRow } from './pipeline-repo.js';

export interface StageAttemptView {
  stage: string;
  attempt: number;
  status: string;
  job_id: string | null;
  event_id: string | null;
  result: Record<string, unknown> | null;
  error: string | null;
  blocked_reason: string | null;
  quarantine: unknown[] | null;
  created_at: string | null;
  finished_at: string | null;
}

export interface PipelineView {
  pipeline_id: string;
  config_key: string;
  status: string;
  stage: string;
  attempt: number;
  work_dir: string;
  breaker: {
    state: string;
    consecutive_failures: number;
    opened_at: string | null;
    failure_threshold: number;
    cooldown_s: number;
  };
  last_error: string | null;
  stages: string[];
  outputs: Record<string, unknown>;
  attempts: StageAttemptView[];
  created_at: string | null;
  updated_at: string | null;
  finished_at: string | null;
}

export function pipelineView(p: PipelineRow, attempts: StageRow[]): PipelineView {
  const spec = JSON.parse(p.spec) as PipelineSpec;
  return {
    pipeline_id: p.id,
    config_key: p.config_key,
    status: p.status,
    stage: p.stage,
    attempt: p.stage_attempt,
    work_dir: p.work_dir,
    breaker: {
      state: p.breaker_state,
      consecutive_failures: p.consecutive_failures,
      opened_at: toIso(p.breaker_opened_at),
      failure_threshold: spec.circuit_breaker.failure_threshold,
      cooldown_s: spec.circuit_breaker.cooldown_ms / 1000,
    },
    last_error: p.last_error,
    stages: Object.keys(spec.stages),
    outputs: JSON.parse(p.outputs) as Record<string, unknown>,
    attempts: [...attempts]
      .sort(
        (a, b) =>
          PIPELINE_STAGES.indexOf(a.stage as never) - PIPELINE_STAGES.indexOf(b.stage as never) ||
          a.attempt - b.attempt,
      )
      .map((s) => ({
        stage: s.stage,
        attempt: s.attempt,
        status: s.status,
        job_id: s.job_id,
        event_id: s.event_id,
        result: s.result ? (JSON.parse(s.result) as Record<string, unknown>) : null,
        error: s.error,
        blocked_reason: s.blocked_reason,
        quarantine: s.quarantine ? (JSON.parse(s.quarantine) as unknown[]) : null,
        created_at: toIso(s.created_at),
        finished_at: toIso(s.finished_at),
      })),
    created_at: toIso(p.created_at),
    updated_at: toIso(p.updated_at),
    finished_at: toIso(p.finished_at),
  };
}
