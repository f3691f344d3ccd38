import type { SinkHealth } from '../alerting/model.js';
import type { DeadLetterStats } from '../events/dlq-service.js';
import type { LaneStatus } from '../events/relay.js';
import type { ComponentStatus } from './components.js';
import type { LeaderStatus } from './leader-elector.js';

/**
 * The aggregated health of one controller (GET /api/v1/health), in the seed's shape:
 * `overall_health` 0..1, `status`, per-component health, readable `issues` and the event
 * handlers' success rate.
 *
 * Glossary:
 * - component health: 1 healthy, 0.5 degraded, 0 unhealthy; overall_health is their mean.
 * - status: unhealthy when the store is unreachable or overall_health < 0.5, degraded when any
 *   component is not healthy, healthy otherwise.
 */
export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

export interface ComponentHealth {
  health: number;
  status: HealthStatus;
  /** What the verdict is based on (component-specific). */
  details: Record<string, unknown>;
}

export interface HealthReport {
  overall_health: number;
  status: HealthStatus;
  checked_at: string;
  leader: { leader: boolean; mode: string; since: string | null; terms: number; last_error: string | null };
  components: Record<string, ComponentHealth>;
  /** name → health, as the seed's `coordinators`. */
  coordinators: Record<string, number>;
  /** The controller's loops: layer, whether leader-only, running / standby / failed / skipped. */
  lifecycle: ComponentStatus[];
  issues: string[];
  handler_health: {
    /** Share of handler calls (sink batches for sinks) that succeeded since the relay started. */
    success_rate: number;
    calls: number;
    failed_calls: number;
    handlers: number;
    /** Subscribers whose latest call failed (they are retrying). */
    failing: number;
    dead_letters: { pending: number; recovered: number; abandoned: number };
  };
}

export interface HealthSources {
  pingStore(): Promise<void>;
  leader(): LeaderStatus;
  lifecycle(): ComponentStatus[];
  relayLanes(): LaneStatus[];
  /** Null when NATS is not configured. */
  nats(): { url: string; connected: boolean; stream: string } | null;
  dlqStats(): Promise<DeadLetterStats>;
  alertSinks(): SinkHealth[];
  jobsByState(): Promise<Array<{ state: string; n: number }>>;
  workersByHealth(): Promise<Array<{ health: string; n: number }>>;
  /** Pipelines and queue monitors (coordination), when present. */
  coordination?(): Promise<{ status: HealthStatus; issues: string[] }>;
}

const SCORE: Record<HealthStatus, number> = { healthy: 1, degraded: 0.5, unhealthy: 0 };

function component(status: HealthStatus, details: Record<string, unknown> = {}): ComponentHealth {
  return { health: SCORE[status], status, details };
}

function message(err: unknown): string {
  return (err as Error)?.message ?? String(err);
}

/** Reads every source (a failing source makes its component unhealthy, never the report fail). */
export async function assessHealth(src: HealthSources, now: number): Promise<HealthReport> {
  const issues: string[] = [];
  const components: Record<string, ComponentHealth> = {};
  const settle = async <T>(name: string, read: () => Promise<T>): Promise<T | null> => {
    try {
      return await read();
    } catch (err) {
      components[name] = component('unhealthy', { error: message(err) });
      issues.push(`${name}: cannot be read (${message(err)})`);
      return null;
    }
  };

  // store
  const storeOk = await settle('store', async () => {
    await src.pingStore();
    return true;
  });
  if (storeOk) components.store = component('healthy');

  // leader election
  const leader = src.leader();
  components.leader = component(leader.last_error && !leader.leader ? 'degraded' : 'healthy', {
    leader: leader.leader,
    mode: leader.mode,
  });
  if (leader.last_error && !leader.leader)
    issues.push(`leader: cannot reach the leader lock (${leader.last_error})`);

  // lifecycle: components that failed to start or were skipped
  const lifecycle = src.lifecycle();
  const broken = lifecycle.filter((c) => c.state === 'failed' || c.state === 'skipped');
  for (const c of broken)
    issues.push(
      c.state === 'failed' ? `${c.name}: failed to start (${c.reason})` : `${c.name}: skipped, ${c.reason}`,
    );
  components.lifecycle = component(
    broken.length === 0 ? 'healthy' : broken.length >= lifecycle.length / 2 ? 'unhealthy' : 'degraded',
    {
      running: lifecycle.filter((c) => c.state === 'running').map((c) => c.name),
      standby: lifecycle.filter((c) => c.state === 'standby').map((c) => c.name),
      failed: lifecycle.filter((c) => c.state === 'failed').map((c) => c.name),
      skipped: lifecycle.filter((c) => c.state === 'skipped').map((c) => c.name),
    },
  );

  // event relay lanes (they run on the leader only: a follower's are on standby)
  const lanes = src.relayLanes();
  const failing = lanes.filter((l) => l.failures > 0);
  const calls = lanes.reduce((n, l) => n + l.calls, 0);
  const failedCalls = lanes.reduce((n, l) => n + l.failed_calls, 0);
  for (const l of failing)
    issues.push(
      `relay: subscriber ${l.name} is failing (${l.failures} in a row: ${l.last_error ?? 'unknown error'})`,
    );
  components.relay = component(failing.length === 0 ? 'healthy' : 'degraded', {
    active: leader.leader,
    lanes: lanes.map((l) => ({ name: l.name, kind: l.kind, cursor: l.cursor, failures: l.failures })),
  });

  // NATS JetStream
  const nats = src.nats();
  if (nats) {
    components.nats = component(nats.connected ? 'healthy' : 'degraded', {
      url: nats.url,
      stream: nats.stream,
      connected: nats.connected,
    });
    if (!nats.connected) issues.push(`nats: not connected to ${nats.url}; events wait in the outbox`);
  }

  // dead-letter queue
  const dlq = await settle('dlq', () => src.dlqStats());
  if (dlq) {
    components.dlq = component(dlq.pending > 0 || dlq.abandoned > 0 ? 'degraded' : 'healthy', {
      pending: dlq.pending,
      recovered: dlq.recovered,
      abandoned: dlq.abandoned,
    });
    if (dlq.pending > 0) issues.push(`dlq: ${dlq.pending} dead-lettered event(s) pending retry`);
    if (dlq.abandoned > 0) issues.push(`dlq: ${dlq.abandoned} dead-lettered event(s) abandoned`);
  }

  // alert sinks
  const sinks = src.alertSinks().filter((s) => s.configured);
  const badSinks = sinks.filter((s) => !s.ok);
  for (const s of badSinks)
    issues.push(
      `alerts: ${s.name} is failing (${s.consecutive_failures} in a row: ${s.last_error ?? 'unknown error'})`,
    );
  components.alerts = component(badSinks.length === 0 ? 'healthy' : 'degraded', {
    configured: sinks.map((s) => s.name),
    failing: badSinks.map((s) => s.name),
  });

  // workers and scheduler
  const workers = await settle('workers', () => src.workersByHealth());
  const jobs = await settle('scheduler', () => src.jobsByState());
  if (workers) {
    const total = workers.reduce((a, w) => a + w.n, 0);
    const healthy = workers.find((w) => w.health === 'healthy')?.n ?? 0;
    const unhealthy = total - healthy;
    components.workers = component(unhealthy > 0 ? 'degraded' : 'healthy', { total, healthy, unhealthy });
    if (unhealthy > 0) issues.push(`workers: ${unhealthy} of ${total} worker(s) not healthy`);
    if (jobs) {
      const pending = jobs.find((j) => j.state === 'PENDING')?.n ?? 0;
      const stuck = pending > 0 && healthy === 0;
      components.scheduler = component(stuck ? 'degraded' : 'healthy', { pending, healthy_workers: healthy });
      if (stuck) issues.push(`scheduler: ${pending} job(s) pending and no healthy worker to place them on`);
    }
  }

  // pipelines and queue monitors
  if (src.coordination) {
    const coord = await settle('coordination', () => src.coordination?.() ?? Promise.resolve(null));
    if (coord) {
      components.coordination = component(coord.status, {});
      issues.push(...coord.issues.map((i) => (i.includes(':') ? i : `coordination: ${i}`)));
    }
  }

  const scores = Object.values(components).map((c) => c.health);
  const overall = scores.length === 0 ? 1 : scores.reduce((a, b) => a + b, 0) / scores.length;
  const status: HealthStatus =
    components.store?.status === 'unhealthy' || overall < 0.5
      ? 'unhealthy'
      : Object.values(components).some((c) => c.status !== 'healthy')
        ? 'degraded'
        : 'healthy';
  return {
    overall_health: Math.round(overall * 1000) / 1000,
    status,
    checked_at: new Date(now).toISOString(),
    leader: {
      leader: leader.leader,
      mode: leader.mode,
      since: leader.since === null ? null : new Date(leader.since).toISOString(),
      terms: leader.terms,
      last_error: leader.last_error,
    },
    components,
    coordinators: Object.fromEntries(Object.entries(components).map(([k, v]) => [k, v.health])),
    lifecycle,
    issues,
    handler_health: {
      success_rate: calls === 0 ? 1 : Math.round(((calls - failedCalls) / calls) * 1000) / 1000,
      calls,
      failed_calls: failedCalls,
      handlers: lanes.length,
      failing: failing.length,
      dead_letters: {
        pending: dlq?.pending ?? 0,
        recovered: dlq?.recovered ?? 0,
        abandoned: dlq?.abandoned ?? 0,
      },
    },
  };
}
