import type { FastifyRequest } from 'fastify';
import { ACCESS, type Access, type Principal } from '../auth/model.js';
import type { TokenService } from '../auth/token-service.js';
import { forbidden, unauthenticated } from '../shared/errors.js';
import type { App } from './app.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; omit only for `public` routes. */
    access?: Access;
    public?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/**
 * Bearer-token authentication and role checks, before the body is read: no valid token is
 * 401, a valid token with the wrong role is 403. A route that declares neither `access` nor
 * `public` refuses everyone, so a forgotten declaration fails closed.
 */
export function registerAuth(app: App, tokens: TokenService): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const config = req.routeOptions.config;
    // No route matched: the not-found handler answers 404 (there is nothing to authorise).
    if (req.routeOptions.url === undefined) return;
    if (config.public) return;
    const header = req.headers.authorization;
    const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!m?.[1]) throw unauthenticated();
    const principal = await tokens.verify(m[1]);
    if (!principal) throw unauthenticated('the bearer token is not valid');
    req.principal = principal;
    const access = config.access;
    if (!access) throw forbidden('this route takes no callers');
    if (!(ACCESS[access] as readonly string[]).includes(principal.role)) {
      throw forbidden(
        `role ${principal.role} may not call this route (needs one of ${ACCESS[access].join(', ')})`,
      );
    }
    // A learner token acts on its own run only.
    if (principal.role === 'learner') {
      const runId = (req.params as { run_id?: string } | undefined)?.run_id;
      if (runId === undefined || runId !== principal.run_id)
        throw forbidden(`this learner token may only act on run ${principal.run_id ?? '(none)'}`);
    }
  });
}
