/** The events part of the configuration: defaults as the seed's, overrides, and refused values. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('events configuration', () => {
  it('defaults: NATS off, the seed retry schedule, a 60 s dedup window', () => {
    const c = loadConfig({}, {});
    expect({
      natsUrl: c.natsUrl,
      natsStream: c.natsStream,
      natsSubjectPrefix: c.natsSubjectPrefix,
      natsRunStatusSubject: c.natsRunStatusSubject,
      eventDedupWindowMs: c.eventDedupWindowMs,
      relayHandlerRetries: c.relayHandlerRetries,
      dlqMaxRetries: c.dlqMaxRetries,
      dlqBaseDelayMs: c.dlqBaseDelayMs,
      dlqMaxDelayMs: c.dlqMaxDelayMs,
      dlqAbandonAfterMs: c.dlqAbandonAfterMs,
      dlqRetryIntervalMs: c.dlqRetryIntervalMs,
    }).toEqual({
      natsUrl: null,
      natsStream: 'RUNPLANE_EVENTS',
      natsSubjectPrefix: 'runplane',
      natsRunStatusSubject: 'run-status',
      eventDedupWindowMs: 60_000,
      relayHandlerRetries: 3,
      dlqMaxRetries: 5,
      dlqBaseDelayMs: 60_000,
      dlqMaxDelayMs: 3_600_000,
      dlqAbandonAfterMs: 168 * 3_600_000,
      dlqRetryIntervalMs: 10_000,
    });
  });

  it('takes flags over env over file', () => {
    const c = loadConfig(
      { natsStream: 'FROM_FLAG' },
      {
        RUNPLANE_NATS_URL: 'nats://10.0.0.1:4222',
        RUNPLANE_NATS_STREAM: 'FROM_ENV',
        RUNPLANE_DLQ_MAX_RETRIES: '2',
      },
    );
    expect([c.natsUrl, c.natsStream, c.dlqMaxRetries]).toEqual(['nats://10.0.0.1:4222', 'FROM_FLAG', 2]);
  });

  it.each([
    [{ RUNPLANE_NATS_STREAM: 'has.dot' }, /RUNPLANE_NATS_STREAM/],
    [{ RUNPLANE_NATS_SUBJECT_PREFIX: 'a..b' }, /RUNPLANE_NATS_SUBJECT_PREFIX/],
    [{ RUNPLANE_NATS_RUN_STATUS_SUBJECT: 'runplane.status' }, /must lie outside runplane\.>/],
    [{ RUNPLANE_NATS_URL: 'http://x' }, /RUNPLANE_NATS_URL/],
    [{ RUNPLANE_DLQ_BASE_DELAY: '2h' }, /RUNPLANE_DLQ_MAX_DELAY/],
    [{ RUNPLANE_DLQ_RETRY_INTERVAL: '0s' }, /RUNPLANE_DLQ_RETRY_INTERVAL/],
    [{ RUNPLANE_RELAY_HANDLER_RETRIES: '-1' }, /RUNPLANE_RELAY_HANDLER_RETRIES/],
  ])('refuses %o', (env, message) => {
    expect(() => loadConfig({}, env)).toThrow(ConfigError);
    expect(() => loadConfig({}, env)).toThrow(message);
  });
});
