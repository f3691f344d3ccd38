import { toIso } from '../shared/clock.js';
import type { CommandRow } from './command-repo.js';
import type { CommandType, RunHealth, RunStatus } from './model.js';
import type { RunRow } from './run-repo.js';
import type { CommandView, RunView } from './schemas.js';

/** The stored summary keeps each metric's step too, so a late, older report cannot replace it. */
export type StoredSummary = Record<string, [step: number, value: number]>;

export function parseSummary(text: string): StoredSummary {
  return JSON.parse(text) as StoredSummary;
}

/** Merges metric values at `step` into a summary: the value of the highest step wins. */
export function mergeSummary(
  summary: StoredSummary,
  step: number,
  values: Record<string, number>,
): StoredSummary {
  const out = { ...summary };
  for (const [name, value] of Object.entries(values)) {
    const prev = out[name];
    if (!prev || prev[0] <= step) out[name] = [step, value];
  }
  return out;
}

export function runView(row: RunRow, heartbeatIntervalMs: number): RunView {
  const summary: Record<string, number> = {};
  for (const [name, [, value]] of Object.entries(parseSummary(row.summary))) summary[name] = value;
  return {
    run_id: row.id,
    name: row.name,
    config: JSON.parse(row.config) as Record<string, unknown>,
    labels: JSON.parse(row.labels) as Record<string, string>,
    job_id: row.job_id,
    sweep_id: row.sweep_id,
    status: row.status as RunStatus,
    health: row.health as RunHealth,
    step: row.step,
    samples_per_sec: row.samples_per_sec,
    loss: row.loss,
    checkpoint_version: row.checkpoint_version,
    last_error: row.last_error,
    notes: row.notes,
    queued_commands: row.queued_commands === null ? null : (JSON.parse(row.queued_commands) as string[]),
    summary,
    last_heartbeat_at: toIso(row.last_heartbeat_at),
    liveness_extension_s: row.liveness_extension_ms / 1000,
    heartbeat_interval_s: heartbeatIntervalMs / 1000,
    created_at: toIso(row.created_at),
    updated_at: toIso(row.updated_at),
    ended_at: toIso(row.ended_at),
  };
}

export function commandView(row: CommandRow): CommandView {
  return {
    id: row.id,
    run_id: row.run_id,
    type: row.type as CommandType,
    payload: JSON.parse(row.payload) as Record<string, unknown>,
    issued_at: toIso(row.issued_at),
    actor: { type: row.actor_type, id: row.actor_id },
    created_at: toIso(row.created_at),
    delivered_at: toIso(row.delivered_at),
    acknowledged_at: toIso(row.acknowledged_at),
    delivery_count: row.delivery_count,
  };
}

/** The seed's compact run-status document plus what changed (the `run.status` event). */
export function statusEvent(
  row: Pick<RunRow, 'id' | 'status' | 'health' | 'step' | 'samples_per_sec' | 'loss' | 'last_error'>,
  previous: { status: string; health: string },
  cause: string,
) {
  return {
    run_id: row.id,
    status: row.status,
    health: row.health,
    step: row.step,
    samples_per_sec: row.samples_per_sec,
    loss: row.loss,
    last_error: row.last_error,
    previous_status: previous.status,
    previous_health: previous.health,
    cause,
  };
}
