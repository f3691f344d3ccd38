import { type Context, context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

/**
 * The trace context as it flows through runplane: W3C `traceparent` in from HTTP requests and
 * job processes, out into jobs' environments (TRACEPARENT). Works with or without an exporter:
 * without one, spans are non-recording and only the incoming context is passed on.
 */
export const TRACEPARENT_ENV = 'TRACEPARENT';

const propagator = new W3CTraceContextPropagator();
let contextManagerInstalled = false;

/** Installs the async-local context manager once per process (context.with needs one). */
export function installContextManager(): void {
  if (contextManagerInstalled) return;
  contextManagerInstalled = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}

/** The context carried by a `traceparent` (+ `tracestate`) header pair; ROOT when absent or invalid. */
export function extractTraceContext(headers: Record<string, string | string[] | undefined>): Context {
  return propagator.extract(ROOT_CONTEXT, headers, {
    get: (carrier, key) => carrier[key],
    keys: (carrier) => Object.keys(carrier),
  });
}

/** The W3C traceparent of a context (default: the active one), or undefined when it is in no trace. */
export function currentTraceparent(ctx: Context = context.active()): string | undefined {
  if (!trace.getSpanContext(ctx)) return undefined;
  const carrier: Record<string, string> = {};
  propagator.inject(ctx, carrier, {
    set: (c, key, value) => {
      c[key] = value;
    },
  });
  return carrier.traceparent;
}
