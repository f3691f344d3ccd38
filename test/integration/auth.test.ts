/**
 * Every route refuses a caller without a valid token (401) and a caller whose role may not call
 * it (403). The routes are enumerated from the running app, so a new route that is not listed in
 * ROUTES below (with the access it should have) fails this suite instead of going unchecked.
 */
import { expect, it } from 'vitest';
import { ACCESS } from '../../src/auth/model.js';
import { ADMIN, type TestController } from '../helpers/controller.js';
import { controllers, forEachDialect } from './support.js';

type Access = keyof typeof ACCESS | 'public';
/** Learner tokens are scoped to one run, so the per-run checks live in runs.test.ts. */
const ROLES = ['admin', 'operator', 'viewer', 'worker', 'simulator'] as const;

/** Who may call each route: the access table of the API. */
const ROUTES: Record<string, Access> = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /api/v1/openapi.json': 'public',
  // The dashboard's page and assets: public (the UI asks for a token before it calls the API).
  'GET /': 'public',
  'GET /*': 'public',
  'GET /metrics': 'read',
  'GET /api/v1/health': 'read',
  'GET /api/v1/whoami': 'read',
  // Jobs, workers, endpoints
  'POST /api/v1/jobs': 'operate',
  'GET /api/v1/jobs': 'read',
  'GET /api/v1/jobs/:job_id': 'read',
  'POST /api/v1/jobs/:job_id/terminate': 'operate',
  'GET /api/v1/jobs/:job_id/logs': 'read',
  'POST /api/v1/workers': 'agent',
  'GET /api/v1/workers': 'read',
  'POST /api/v1/workers/:worker_id/heartbeat': 'agent',
  'DELETE /api/v1/workers/:worker_id': 'agent',
  'POST /api/v1/workers/:worker_id/poll': 'agent',
  'POST /api/v1/workers/:worker_id/reports': 'agent',
  'POST /api/v1/endpoints': 'endpointsWrite',
  'DELETE /api/v1/endpoints/:endpoint_id': 'endpointsWrite',
  'GET /api/v1/endpoints': 'endpointsRead',
  'POST /api/v1/tokens': 'admin',
  'GET /api/v1/tokens': 'admin',
  'DELETE /api/v1/tokens/:token_id': 'admin',
  // Runs: learner routes also take the run's own learner token (scoped per run; see runs.test.ts)
  'POST /api/v1/runs': 'operate',
  'GET /api/v1/runs': 'read',
  'GET /api/v1/runs/:run_id': 'runRead',
  'POST /api/v1/runs/:run_id/heartbeat': 'learner',
  'POST /api/v1/runs/:run_id/metrics': 'learner',
  'GET /api/v1/runs/:run_id/metrics': 'runRead',
  'POST /api/v1/runs/:run_id/finish': 'learner',
  'POST /api/v1/runs/:run_id/liveness': 'operate',
  'POST /api/v1/runs/:run_id/commands': 'operate',
  'GET /api/v1/runs/:run_id/commands': 'runRead',
  'GET /api/v1/runs/:run_id/commands/next': 'learner',
  'POST /api/v1/runs/:run_id/commands/:command_id/ack': 'learner',
  'GET /api/v1/stream/runs': 'read',
  'GET /api/v1/audit': 'read',
  'GET /api/v1/audit/verify': 'read',
  'POST /api/v1/audit/export': 'admin',
  'GET /api/v1/alerts/sinks': 'read',
  // Events and the dead-letter queue
  'POST /api/v1/events': 'operate',
  'GET /api/v1/events/types': 'read',
  'GET /api/v1/dlq': 'read',
  'GET /api/v1/dlq/stats': 'read',
  'GET /api/v1/dlq/:id': 'read',
  'POST /api/v1/dlq/:id/retry': 'operate',
  // Coordination: pipelines, models, task limits
  'GET /api/v1/pipelines': 'read',
  'GET /api/v1/pipelines/:config': 'read',
  'POST /api/v1/pipelines': 'operate',
  'POST /api/v1/pipelines/:config/stop': 'operate',
  'GET /api/v1/models': 'read',
  'GET /api/v1/models/production': 'read',
  'GET /api/v1/models/:model_id': 'read',
  'POST /api/v1/models': 'operate',
  'POST /api/v1/models/:model_id/promote': 'operate',
  'POST /api/v1/models/:model_id/rollback': 'operate',
  'GET /api/v1/coordination/can-spawn': 'read',
  'GET /api/v1/coordination/queues': 'read',
  'GET /api/v1/limits': 'read',
  // Sweeps
  'POST /api/v1/sweeps': 'operate',
  'GET /api/v1/sweeps': 'read',
  'GET /api/v1/sweeps/:sweep_id': 'read',
  'GET /api/v1/sweeps/:sweep_id/trials': 'read',
  'GET /api/v1/sweeps/:sweep_id/analysis': 'read',
  'POST /api/v1/sweeps/:sweep_id/stop': 'operate',
  'POST /api/v1/sweeps/:sweep_id/resume': 'operate',
  // Pods
  'POST /api/v1/pods': 'operate',
  'GET /api/v1/pods': 'read',
  'GET /api/v1/pods/:pod_id': 'read',
  'PATCH /api/v1/pods/:pod_id': 'operate',
  'GET /api/v1/pods/:pod_id/epochs': 'read',
  'GET /api/v1/pods/:pod_id/trace': 'read',
  'POST /api/v1/pods/:pod_id/dispatch': 'operate',
  'POST /api/v1/pods/:pod_id/reset': 'operate',
  'POST /api/v1/pods/:pod_id/archive': 'operate',
  'POST /api/v1/pods/:pod_id/results': 'podResults',
  'PUT /api/v1/participants/:participant_id': 'operate',
  'GET /api/v1/leaderboard': 'read',
  'GET /api/v1/replays': 'read',
};
const PUBLIC = ['GET /', 'GET /api/v1/openapi.json', 'GET /healthz', 'GET /readyz'];
/** Routes left out of the OpenAPI document on purpose. */
const HIDDEN = ['GET /', 'GET /*', 'GET /healthz', 'GET /readyz', 'GET /api/v1/openapi.json', 'GET /metrics'];

/** "METHOD /path" of every route the app serves (HEAD aside), from Fastify's route tree. */
function servedRoutes(t: TestController): string[] {
  const out = new Set<string>();
  const stack: string[] = [];
  for (const line of t.ctl.app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    const path = (stack[depth - 1] ?? '') + m[2]!;
    stack[depth] = path;
    for (const method of (m[3] ?? '').split(',').map((s) => s.trim())) {
      if (method && method !== 'HEAD') out.add(`${method} ${path}`);
    }
  }
  return [...out].sort();
}

/** Calls a route with a placeholder for each path parameter and, for writes, an empty JSON body. */
async function call(
  t: TestController,
  route: string,
  authorization: string | null,
  head = false,
): Promise<{ status: number; code: string | undefined }> {
  const [method, path] = route.split(' ') as [string, string];
  const headers: Record<string, string> = {};
  if (authorization !== null) headers.authorization = authorization;
  const withBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
  if (withBody) headers['content-type'] = 'application/json';
  const res = await fetch(t.ctl.url + path.replace(/:[a-z_]+/g, 'nonexistent'), {
    method: head ? 'HEAD' : method,
    headers,
    ...(withBody ? { body: '{}' } : {}),
  });
  // A stream (server-sent events) never ends by itself: its status is all this needs.
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    await res.body?.cancel();
    return { status: res.status, code: undefined };
  }
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code };
}

forEachDialect((dialect) => {
  const start = controllers(dialect);

  it('knows the access of every route the app serves, and documents every non-hidden one', async () => {
    const t = await start();
    const served = servedRoutes(t);
    expect(served, 'a route was added or removed: give it its access in ROUTES').toEqual(
      Object.keys(ROUTES).sort(),
    );
    const doc = await t.admin.request<{ paths: Record<string, Record<string, unknown>> }>(
      'GET',
      '/api/v1/openapi.json',
    );
    const documented = Object.entries(doc.paths)
      .flatMap(([path, methods]) =>
        Object.keys(methods).map((m) => `${m.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}`),
      )
      .sort();
    expect(documented).toEqual(served.filter((r) => !HIDDEN.includes(r)));
    expect(
      Object.entries(ROUTES)
        .filter(([r, a]) => a === 'public' && r !== 'GET /*')
        .map(([r]) => r)
        .sort(),
    ).toEqual(PUBLIC);
  });

  it('serves exactly the public routes without a token', async () => {
    const t = await start();
    for (const route of PUBLIC) expect((await call(t, route, null)).status, route).toBe(200);
  });

  it('refuses every other route without a valid token: 401 UNAUTHENTICATED', async () => {
    const t = await start();
    const protectedRoutes = servedRoutes(t).filter((r) => ROUTES[r] !== 'public');
    expect(protectedRoutes.length).toBeGreaterThan(15);
    for (const route of protectedRoutes) {
      for (const auth of [
        null,
        '',
        'Bearer',
        `Basic ${Buffer.from('admin:admin').toString('base64')}`,
        'Bearer rp_not_a_real_token',
        ADMIN,
      ]) {
        const { status, code } = await call(t, route, auth);
        expect({ route, auth, status, code }).toEqual({ route, auth, status: 401, code: 'UNAUTHENTICATED' });
      }
      if (route.startsWith('GET '))
        expect((await call(t, route, null, true)).status, `HEAD ${route}`).toBe(401);
    }
  });

  it('lets each role call exactly the routes its access allows, and answers 403 FORBIDDEN otherwise', async () => {
    const t = await start();
    const tokens = Object.fromEntries(
      await Promise.all(
        ROLES.map(
          async (role) => [role, role === 'admin' ? ADMIN : (await t.admin.createToken(role)).token] as const,
        ),
      ),
    );
    const routes = servedRoutes(t).filter((r) => ROUTES[r] !== 'public');
    const seen = new Set<string>();
    for (const route of routes) {
      const access = ROUTES[route];
      if (access === undefined || access === 'public') throw new Error(`no access declared for ${route}`);
      for (const role of ROLES) {
        const allowed = (ACCESS[access] as readonly string[]).includes(role);
        const { status, code } = await call(t, route, `Bearer ${tokens[role]}`);
        if (allowed) {
          expect([401, 403], `${role} should be let through ${route}`).not.toContain(status);
        } else {
          expect({ route, role, status, code }).toEqual({ route, role, status: 403, code: 'FORBIDDEN' });
        }
        seen.add(`${role}:${allowed ? 'allowed' : 'forbidden'}`);
      }
    }
    // Each role meets both answers somewhere except admin, which may call everything.
    expect([...seen].sort()).toEqual([
      'admin:allowed',
      'operator:allowed',
      'operator:forbidden',
      'simulator:allowed',
      'simulator:forbidden',
      'viewer:allowed',
      'viewer:forbidden',
      'worker:allowed',
      'worker:forbidden',
    ]);
  });

  it('a revoked token is refused at once, used before or not', async () => {
    const t = await start();
    const used = await t.admin.createToken('operator', 'used');
    const unused = await t.admin.createToken('viewer', 'unused');
    expect((await call(t, 'GET /api/v1/jobs', `Bearer ${used.token}`)).status).toBe(200);
    await t.admin.revokeToken(used.token_id);
    await t.admin.revokeToken(unused.token_id);
    for (const token of [used.token, unused.token]) {
      expect(await call(t, 'GET /api/v1/jobs', `Bearer ${token}`)).toEqual({
        status: 401,
        code: 'UNAUTHENTICATED',
      });
    }
    const listed = (await t.admin.listTokens()).tokens.filter(
      (x) => x.name === 'used' || x.name === 'unused',
    );
    expect(listed.map((x) => x.revoked_at !== null)).toEqual([true, true]);
    expect((await call(t, `DELETE /api/v1/tokens/${used.token_id}`, `Bearer ${ADMIN}`)).status).toBe(404);
  });

  it('stores tokens only as hashes', async () => {
    const t = await start();
    const { token } = await t.admin.createToken('operator');
    const rows = await t.ctl.store.db.selectFrom('tokens').selectAll().execute();
    expect(rows.length).toBeGreaterThanOrEqual(2);
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain(token);
    expect(dump).not.toContain(ADMIN);
    expect(dump).not.toContain(token.slice(3, 20));
  });
});
