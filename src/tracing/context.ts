import { type Context, context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

/**
 * The trace context as it flows through runplane: W3C `traceparent` in from HTTP requests and
 * job processes, out into jobs' environments (TRACEPARENT), into each event row written in it
 * (`events.traceparent`), and from an event into its subscribers (relay handlers, NATS headers
 * and consumers). Works with or without an exporter: without one, spans are non-recording and
 * only the incoming context is passed on.
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

/** A W3C traceparent as runplane stores it (lower-case, re-serialised), or null when it is not a valid one. */
export function normalizeTraceparent(traceparent: string | null | undefined): string | null {
  if (!traceparent) return null;
  return currentTraceparent(extractTraceContext({ traceparent })) ?? null;
}

/**
 * Runs `fn` in the trace context of `traceparent` (an event's). Without one (null, or not a
 * valid traceparent) it runs outside any trace, not in whatever context happened to call it:
 * a relay round woken by one request's commit must not lend that request's trace to the
 * handlers of other events.
 */
export function withTraceparent<T>(traceparent: string | null | undefined, fn: () => T): T {
  const ctx = traceparent ? extractTraceContext({ traceparent }) : ROOT_CONTEXT;
  if (trace.getSpanContext(ctx)) return context.with(ctx, fn);
  // No trace to enter. Leave the caller's if it is in one; if it is in none, fn already runs
  // outside any trace. Calling fn as it is then keeps a process that never sees a trace from
  // turning async context tracking on: on Node 20 that puts a hook on every promise (the
  // controller's event loop was about 4% busier for it in the end-to-end benchmark).
  return trace.getSpanContext(context.active()) ? context.with(ROOT_CONTEXT, fn) : fn();
}

/**
 * A job's own trace: TRACEPARENT in its stored environment (a JSON object), or null. A job's
 * events belong to its trace, whoever reports the change (a worker, a sweep of the scheduler).
 */
export function jobTraceparent(envJson: string): string | null {
  const env = JSON.parse(envJson) as Record<string, unknown>;
  const v = env[TRACEPARENT_ENV];
  return typeof v === 'string' ? v : null;
}
