import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { TokenService } from '../auth/token-service.js';
import { registerAuth } from './auth.js';
import { errorHandler } from './errors.js';
import type { Metrics } from './metrics.js';
import { validatorCompiler } from './validation.js';

export type App = FastifyInstance<
  import('node:http').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface AppOptions {
  logger: Logger;
  tokens: TokenService;
  metrics: Metrics;
  version: string;
  /** Largest accepted request body in bytes. */
  bodyLimit?: number;
  /**
   * Serve HTTPS. With `requestCert` (a client CA is configured) clients are asked for a
   * certificate but not required to send one: bearer tokens still authenticate, and a
   * certificate the CA verifies is recorded in the audit log (see request-meta.ts).
   */
  https?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer; requestCert: boolean } | null;
}

/**
 * The Fastify application without any slice's routes: validation, error body, auth,
 * OpenAPI generation and request metrics. Slices add their routes with `register*Routes`.
 */
export async function createApp(opts: AppOptions): Promise<App> {
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    // Per-request lines would drown the log in worker polls; latency goes to /metrics instead.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
    return503OnClosing: true,
    ...(opts.https
      ? {
          https: {
            cert: opts.https.cert,
            key: opts.https.key,
            ...(opts.https.ca ? { ca: opts.https.ca } : {}),
            requestCert: opts.https.requestCert,
            rejectUnauthorized: false,
          },
        }
      : {}),
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as App;
  // The API speaks JSON only: without this, Fastify's built-in text/plain parser lets a text body
  // through to validation (422) instead of refusing its media type (415).
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(validatorCompiler);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => {
    void reply
      .status(404)
      .send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}`, details: [] } });
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'runplane API', version: opts.version },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  registerAuth(app, opts.tokens);
  app.addHook('onResponse', async (req, reply) => {
    opts.metrics.httpDuration.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.get('/api/v1/openapi.json', { config: { public: true }, schema: { hide: true } }, async () =>
    app.swagger(),
  );
  app.get('/metrics', { config: { access: 'read' }, schema: { hide: true } }, async (_req, reply) => {
    void reply.header('content-type', opts.metrics.registry.contentType);
    return opts.metrics.registry.metrics();
  });
  return app;
}
