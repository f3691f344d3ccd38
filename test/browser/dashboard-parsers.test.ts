/**
 * The dashboard's pure parts, without a browser: the server-sent-events parser it reads the run
 * stream with (fetch, not EventSource, so the token stays in a header), the Prometheus text
 * reader the overview counts with.
 */
import { describe, expect, it } from 'vitest';
import { metricValue, parsePrometheus, sumBy } from '../../src/dashboard/prometheus.js';
import { SseParser } from '../../src/dashboard/sse-parser.js';

describe('SseParser', () => {
  it('parses events, ids and retry, and ignores comments', () => {
    const p = new SseParser();
    const out = p.feed(
      'retry: 2000\n\n: keep-alive\n\nid: 7\nevent: run-status\ndata: {"run_id":"a"}\n\nid: 8\ndata: x\n\n',
    );
    expect(out).toEqual([
      { lastEventId: '7', event: 'run-status', data: '{"run_id":"a"}' },
      { lastEventId: '8', event: 'message', data: 'x' },
    ]);
    expect(p.retryMs).toBe(2000);
    expect(p.lastEventId).toBe('8');
  });

  it('reassembles events split anywhere across chunks, with any line ending', () => {
    const text =
      'id: 41\r\nevent: run-status\r\ndata: {"a":1,\r\ndata: "b":2}\r\n\r\nid: 42\rdata: second\r\r';
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SseParser();
      const out = [...p.feed(text.slice(0, cut)), ...p.feed(text.slice(cut))];
      expect(out, `cut at ${cut}`).toEqual([
        { lastEventId: '41', event: 'run-status', data: '{"a":1,\n"b":2}' },
        { lastEventId: '42', event: 'message', data: 'second' },
      ]);
    }
  });

  it('does not dispatch an event until its blank line arrives, and drops one without data', () => {
    const p = new SseParser();
    expect(p.feed('id: 3\nevent: run-status\ndata: {}\n')).toEqual([]);
    expect(p.feed('\n')).toEqual([{ lastEventId: '3', event: 'run-status', data: '{}' }]);
    expect(p.feed('id: 4\nevent: run-status\n\n')).toEqual([]);
    // The id of an event without data still moves the resume point.
    expect(p.lastEventId).toBe('4');
  });
});

describe('parsePrometheus', () => {
  const text = [
    '# HELP runplane_jobs Jobs by state',
    '# TYPE runplane_jobs gauge',
    'runplane_jobs{state="PENDING"} 100000',
    'runplane_jobs{state="RUNNING"} 12',
    'runplane_runs{status="running",health="healthy"} 3',
    'runplane_runs{status="running",health="heartbeat_stale"} 1',
    'runplane_runs{status="paused",health="healthy"} 2',
    'runplane_placements_total 4711',
    'runplane_http_request_duration_seconds_bucket{le="+Inf",route="/api/v1/x \\"y\\""} 5',
    '',
  ].join('\n');
  const samples = parsePrometheus(text);

  it('reads labelled and unlabelled samples', () => {
    expect(sumBy(samples, 'runplane_jobs', 'state')).toEqual({ PENDING: 100000, RUNNING: 12 });
    expect(sumBy(samples, 'runplane_runs', 'status')).toEqual({ running: 4, paused: 2 });
    expect(sumBy(samples, 'runplane_runs', 'health')).toEqual({ healthy: 5, heartbeat_stale: 1 });
    expect(metricValue(samples, 'runplane_placements_total')).toBe(4711);
    expect(metricValue(samples, 'runplane_absent')).toBeNull();
  });

  it('unescapes label values', () => {
    const bucket = samples.find((s) => s.name === 'runplane_http_request_duration_seconds_bucket');
    expect(bucket?.labels).toEqual({ le: '+Inf', route: '/api/v1/x "y"' });
  });
});
