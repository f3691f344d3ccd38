import { type Context, context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { App } from '../http/app.js';
import { extractTraceContext } from './context.js';
import type { Tracing } from './tracing.js';

/**
 * Each HTTP request runs in its trace context: the incoming `traceparent`'s, under a server span
 * when spans are exported. Requests without a `traceparent` cost nothing when tracing is off.
 */
export function registerHttpTracing(app: App, tracing: Tracing): void {
  const contexts = new WeakMap<object, { ctx: Context; span: Span | null }>();
  app.addHook('onRequest', (req, _reply, done) => {
    if (!tracing.enabled && req.headers.traceparent === undefined) return done();
    let ctx = extractTraceContext(req.headers);
    let span: Span | null = null;
    if (tracing.enabled) {
      span = tracing.tracer.startSpan(
        `${req.method} ${req.routeOptions.url ?? 'unknown route'}`,
        {
          kind: SpanKind.SERVER,
          attributes: {
            'http.request.method': req.method,
            'http.route': req.routeOptions.url ?? '',
            'url.path': req.url.split('?')[0] ?? req.url,
          },
        },
        ctx,
      );
      ctx = trace.setSpan(ctx, span);
    }
    contexts.set(req, { ctx, span });
    done();
  });
  // Entered after the body is parsed: a body's stream events would not carry the context.
  app.addHook('preHandler', (req, _reply, done) => {
    const t = contexts.get(req);
    if (!t) return done();
    context.with(t.ctx, done);
  });
  app.addHook('onResponse', (req, reply, done) => {
    const span = contexts.get(req)?.span;
    if (span) {
      span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
    done();
  });
}
