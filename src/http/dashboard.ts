import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from './app.js';

/**
 * Serves the dashboard (the Vite build of src/dashboard, in dist/dashboard) at `/` on the API's
 * port. The files are read and gzipped once at start: a few hundred KiB that every page load
 * then gets from memory. Hashed assets are cached for good; index.html is revalidated so a new
 * build is picked up. The page is public (it holds no data); the API calls it makes carry the
 * token the user logs in with. The content security policy allows nothing outside this origin.
 */

interface Asset {
  body: Buffer;
  gzip: Buffer | null;
  type: string;
  immutable: boolean;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
};

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; " +
    "style-src 'self' 'unsafe-inline'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** Where the build is: dist/dashboard next to the compiled server, or under the repo when run from src/. */
export function findDashboardBuild(): string | null {
  const candidates = [
    fileURLToPath(new URL('../dashboard/', import.meta.url)),
    fileURLToPath(new URL('../../dist/dashboard/', import.meta.url)),
  ];
  // src/dashboard holds the sources (also with an index.html): only a build has Vite's manifest.
  return candidates.find((d) => existsSync(join(d, '.vite', 'manifest.json'))) ?? null;
}

function load(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      if (name.startsWith('.')) continue;
      const path = rel ? `${rel}/${name}` : name;
      if (statSync(join(dir, path)).isDirectory()) {
        walk(path);
        continue;
      }
      const type = TYPES[extname(name)];
      if (!type) continue;
      const body = readFileSync(join(dir, path));
      const compressible = !type.startsWith('image/png') && !type.startsWith('font/');
      const gz = compressible && body.length > 1024 ? gzipSync(body, { level: 9 }) : null;
      assets.set(`/${path}`, {
        body,
        gzip: gz && gz.length < body.length ? gz : null,
        type,
        immutable: path.startsWith('assets/'),
      });
    }
  };
  walk('');
  return assets;
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>runplane</title>
<p>The dashboard is not built. Run <code>npm run build</code> (it builds the server and the dashboard) and restart
<code>runplane up</code>. The API is at <code>/api/v1</code>.</p>`;

function send(req: FastifyRequest, reply: FastifyReply, a: Asset) {
  void reply.headers(SECURITY_HEADERS);
  void reply.header('content-type', a.type);
  void reply.header('cache-control', a.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
  void reply.header('vary', 'accept-encoding');
  const accepts = String(req.headers['accept-encoding'] ?? '');
  if (a.gzip && /\bgzip\b/.test(accepts)) {
    void reply.header('content-encoding', 'gzip');
    return reply.send(a.gzip);
  }
  return reply.send(a.body);
}

export function registerDashboard(app: App, opts: { dir?: string | null } = {}): void {
  const dir = opts.dir === undefined ? findDashboardBuild() : opts.dir;
  const assets = dir ? load(dir) : new Map<string, Asset>();
  const index = assets.get('/index.html') ?? {
    body: Buffer.from(NOT_BUILT),
    gzip: null,
    type: TYPES['.html']!,
    immutable: false,
  };
  const route = { config: { public: true }, schema: { hide: true } } as const;
  app.get('/', route, async (req, reply) => send(req, reply, index));
  app.get('/assets/*', route, async (req, reply) => {
    const a = assets.get(req.url.split('?')[0] ?? '');
    if (!a) {
      return reply
        .status(404)
        .send({ error: { code: 'NOT_FOUND', message: `no dashboard asset ${req.url}`, details: [] } });
    }
    return send(req, reply, a);
  });
}
