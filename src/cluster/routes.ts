import { Type } from '@sinclair/typebox';
import type { App } from '../http/app.js';
import { ErrorSchema, StringEnum } from '../http/schema-helpers.js';
import type { HealthReport } from './health.js';

const Status = StringEnum(['healthy', 'degraded', 'unhealthy'] as const);
const Nullable = (t: ReturnType<typeof Type.String>) => Type.Union([t, Type.Null()]);

export const HealthReportSchema = Type.Object({
  overall_health: Type.Number({ minimum: 0, maximum: 1 }),
  status: Status,
  checked_at: Type.String({ format: 'date-time' }),
  leader: Type.Object({
    leader: Type.Boolean(),
    mode: Type.String({ description: 'postgres-advisory (replicas elect a leader) or single (SQLite)' }),
    since: Nullable(Type.String({ format: 'date-time' })),
    terms: Type.Integer(),
    last_error: Nullable(Type.String()),
  }),
  components: Type.Record(
    Type.String(),
    Type.Object({
      health: Type.Number(),
      status: Status,
      details: Type.Record(Type.String(), Type.Unknown()),
    }),
  ),
  coordinators: Type.Record(Type.String(), Type.Number()),
  lifecycle: Type.Array(
    Type.Object({
      name: Type.String(),
      layer: Type.Integer(),
      leader_only: Type.Boolean(),
      state: StringEnum(['stopped', 'running', 'standby', 'failed', 'skipped'] as const),
      reason: Nullable(Type.String()),
    }),
  ),
  issues: Type.Array(Type.String()),
  handler_health: Type.Object({
    success_rate: Type.Number(),
    calls: Type.Integer(),
    failed_calls: Type.Integer(),
    handlers: Type.Integer(),
    failing: Type.Integer(),
    dead_letters: Type.Object({
      pending: Type.Integer(),
      recovered: Type.Integer(),
      abandoned: Type.Integer(),
    }),
  }),
});

/** GET /api/v1/health: the aggregated health of this controller (any replica answers for itself). */
export function registerHealthRoutes(app: App, health: () => Promise<HealthReport>): void {
  app.get(
    '/api/v1/health',
    {
      config: { access: 'read' },
      schema: {
        tags: ['health'],
        summary:
          'Aggregated health: overall_health 0..1, status, per-component health, issues, handler success rate',
        response: { 200: HealthReportSchema, 401: ErrorSchema, 403: ErrorSchema },
      },
    },
    async () => health(),
  );
}
