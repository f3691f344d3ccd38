import { Type } from '@sinclair/typebox';
import type { App } from '../http/app.js';
import { ErrorSchema, StringEnum } from '../http/schema-helpers.js';
import type { AlertSinks } from './alert-sinks.js';
import { SINK_NAMES } from './model.js';

const Time = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);

export const SinkHealthSchema = Type.Object({
  name: StringEnum(SINK_NAMES),
  subscriber: Type.String(),
  configured: Type.Boolean(),
  target: Type.Union([Type.String(), Type.Null()]),
  ok: Type.Boolean(),
  consecutive_failures: Type.Integer(),
  last_error: Type.Union([Type.String(), Type.Null()]),
  last_success_at: Time,
  last_failure_at: Time,
  delivered: Type.Integer(),
  dropped: Type.Integer(),
});

/** The alert sinks' health: a sink that keeps failing shows ok=false here. */
export function registerAlertRoutes(app: App, sinks: AlertSinks): void {
  app.get(
    '/api/v1/alerts/sinks',
    {
      config: { access: 'read' },
      schema: {
        tags: ['alerts'],
        summary: 'Alert sinks and their delivery health',
        response: {
          200: Type.Object({ sinks: Type.Array(SinkHealthSchema) }),
          401: ErrorSchema,
          403: ErrorSchema,
        },
      },
    },
    async () => ({ sinks: sinks.health() }),
  );
}
