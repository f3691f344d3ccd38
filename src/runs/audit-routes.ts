import { type Static, Type } from '@sinclair/typebox';
import type { App } from '../http/app.js';
import { ErrorSchema, StringEnum } from '../http/schema-helpers.js';
import type { AuditService } from './audit-service.js';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const Hash = Type.String({ pattern: '^[0-9a-f]{64}$' });

export const AuditEntrySchema = Type.Object({
  seq: Type.Integer(),
  id: Type.String(),
  run_id: Nullable(Type.String()),
  action: Type.String(),
  actor: Type.Object({ type: Type.String(), id: Type.String() }),
  envelope: Type.Unknown(),
  source_ip: Nullable(Type.String()),
  user_agent: Nullable(Type.String()),
  client_cert_fingerprint: Nullable(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  prev_hash: Type.String(),
  entry_hash: Type.String(),
});

export const AuditListQuerySchema = Type.Object(
  {
    run_id: Type.Optional(Type.String({ minLength: 1 })),
    action: Type.Optional(Type.String({ minLength: 1 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
  },
  { additionalProperties: false },
);
export type AuditListQuery = Static<typeof AuditListQuerySchema>;

export const AuditVerifySchema = Type.Object({
  ok: Type.Boolean(),
  entries_checked: Type.Integer(),
  head_hash: Hash,
  first_bad: Type.Union([
    Type.Object({
      seq: Type.Integer(),
      id: Nullable(Type.String()),
      reason: StringEnum([
        'ENTRY_HASH_MISMATCH',
        'PREV_HASH_MISMATCH',
        'EXPORT_HEAD_MISMATCH',
        'EXPORTED_ENTRY_MISSING',
      ] as const),
    }),
    Type.Null(),
  ]),
});

/** The manifest of the export that was written, or `{"exported": 0}` when there was nothing new. */
export const AuditExportSchema = Type.Object({
  exported: Type.Integer(),
  format: Type.Optional(Type.String()),
  from_seq: Type.Optional(Type.Integer()),
  to_seq: Type.Optional(Type.Integer()),
  entry_count: Type.Optional(Type.Integer()),
  head_hash: Type.Optional(Hash),
  prev_head_hash: Type.Optional(Hash),
  object: Type.Optional(Type.String()),
  sha256: Type.Optional(Hash),
  bytes: Type.Optional(Type.Integer()),
  exported_at: Type.Optional(Type.String({ format: 'date-time' })),
});

const errors = { 401: ErrorSchema, 403: ErrorSchema, 409: ErrorSchema, 422: ErrorSchema };

/** The read-only audit view, chain verification and the on-demand export. */
export function registerAuditRoutes(app: App, audit: AuditService): void {
  app.get(
    '/api/v1/audit',
    {
      config: { access: 'read' },
      schema: {
        tags: ['audit'],
        summary: 'Audit entries, newest first',
        querystring: AuditListQuerySchema,
        response: {
          200: Type.Object({
            entries: Type.Array(AuditEntrySchema),
            next_cursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errors,
        },
      },
    },
    async (req) => audit.list(req.query),
  );
  app.get(
    '/api/v1/audit/verify',
    {
      config: { access: 'read' },
      schema: {
        tags: ['audit'],
        summary: 'Walk the hash chain and name the first entry that fails',
        response: { 200: AuditVerifySchema, ...errors },
      },
    },
    async () => audit.verify(),
  );
  app.post(
    '/api/v1/audit/export',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['audit'],
        summary: 'Export the entries appended since the last export (NDJSON + manifest)',
        response: { 200: AuditExportSchema, ...errors },
      },
    },
    async () => (await audit.export()) ?? { exported: 0 },
  );
}
