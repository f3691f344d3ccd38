/**
 * withTraceparent: an event's handler runs in the event's trace, never in the trace of whoever
 * woke the relay, and outside any trace it enters no context at all (entering one turns on
 * async context tracking, a hook on every promise on Node 20).
 */
import { context } from '@opentelemetry/api';
import { describe, expect, it, vi } from 'vitest';
import {
  currentTraceparent,
  extractTraceContext,
  installContextManager,
  withTraceparent,
} from '../../src/tracing/context.js';

const EVENT_TP = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const CALLER_TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

installContextManager();

describe('withTraceparent', () => {
  it("runs the handler in the event's trace, across awaits", async () => {
    const seen = await withTraceparent(EVENT_TP, async () => {
      await new Promise((r) => setTimeout(r, 1));
      return currentTraceparent();
    });
    expect(seen).toBe(EVENT_TP);
  });

  it("runs a handler of an event without a trace outside the caller's trace", async () => {
    const seen = await context.with(extractTraceContext({ traceparent: CALLER_TP }), async () => {
      expect(currentTraceparent()).toBe(CALLER_TP);
      return [
        await withTraceparent(null, async () => currentTraceparent()),
        await withTraceparent('not a traceparent', async () => currentTraceparent()),
      ];
    });
    expect(seen).toEqual([undefined, undefined]);
  });

  it('enters no context when neither the event nor the caller is in a trace', () => {
    const entered = vi.spyOn(context, 'with');
    try {
      expect(withTraceparent(null, () => 42)).toBe(42);
      expect(withTraceparent('00-garbage', () => 43)).toBe(43);
      expect(entered).not.toHaveBeenCalled();
      expect(withTraceparent(EVENT_TP, () => currentTraceparent())).toBe(EVENT_TP);
      expect(entered).toHaveBeenCalledTimes(1);
    } finally {
      entered.mockRestore();
    }
  });
});
