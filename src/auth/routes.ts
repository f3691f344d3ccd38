import { Type } from '@sinclair/typebox';
import type { App } from '../http/app.js';
import { ErrorSchema, StringEnum } from '../http/schema-helpers.js';
import type { TokenService } from './token-service.js';

const errors = { 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 422: ErrorSchema };

/** Token administration (admin only). Learner tokens are issued with runs, not here. */
export function registerTokenRoutes(app: App, tokens: TokenService): void {
  app.post(
    '/api/v1/tokens',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['tokens'],
        body: Type.Object(
          {
            role: StringEnum(['admin', 'operator', 'viewer', 'worker', 'simulator'] as const),
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            token_id: Type.String(),
            token: Type.String(),
            role: Type.String(),
            name: Type.String(),
          }),
          ...errors,
        },
      },
    },
    async (req, reply) =>
      reply.status(201).send(await tokens.create(req.body.role, req.body.name ?? `${req.body.role} token`)),
  );
  // Who the caller's token is: the dashboard reads the role to show action buttons only to those who may act.
  app.get(
    '/api/v1/whoami',
    {
      config: { access: 'read' },
      schema: {
        tags: ['tokens'],
        summary: "The calling token's name, role and (for learner tokens) run",
        response: {
          200: Type.Object({
            name: Type.String(),
            role: Type.String(),
            run_id: Type.Union([Type.String(), Type.Null()]),
          }),
          401: ErrorSchema,
          403: ErrorSchema,
        },
      },
    },
    async (req) => ({
      name: req.principal?.name ?? '',
      role: req.principal?.role ?? '',
      run_id: req.principal?.run_id ?? null,
    }),
  );
  app.get('/api/v1/tokens', { config: { access: 'admin' }, schema: { tags: ['tokens'] } }, async () => ({
    tokens: await tokens.list(),
  }));
  app.delete(
    '/api/v1/tokens/:token_id',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['tokens'],
        params: Type.Object({ token_id: Type.String() }),
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (req, reply) => {
      await tokens.revoke(req.params.token_id);
      return reply.status(204).send(null);
    },
  );
}
