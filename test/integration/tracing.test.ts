import { createServer, type Server } from 'node:http';
import { afterEach, expect, it } from 'vitest';
import { ADMIN, eventually } from '../helpers/controller.js';
import { controllers, forEachDialect } from './support.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

async function launchWithHeaders(url: string, headers: Record<string, string>): Promise<string> {
  const res = await fetch(`${url}/api/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ command: ['true'] }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { job_id: string }).job_id;
}

/** A local OTLP/HTTP receiver: collects the JSON export requests posted to /v1/traces. */
async function otlpReceiver(): Promise<{
  url: string;
  spans: () => Array<Record<string, unknown>>;
  close(): Promise<void>;
}> {
  const bodies: unknown[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      if (req.url === '/v1/traces') bodies.push(JSON.parse(body));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  type Export = { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<Record<string, unknown>> }> }> };
  return {
    url: `http://127.0.0.1:${port}`,
    spans: () =>
      (bodies as Export[]).flatMap((b) =>
        b.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)),
      ),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

forEachDialect((dialect) => {
  const start = controllers(dialect);

  it("carries an incoming traceparent into the job's environment (TRACEPARENT); none without one", async () => {
    const t = await start();
    const traced = await launchWithHeaders(t.ctl.url, { traceparent: `00-${TRACE_ID}-${PARENT}-01` });
    const env = (await t.admin.getJob(traced)).env;
    expect(env.TRACEPARENT).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));

    const plain = await launchWithHeaders(t.ctl.url, {});
    expect((await t.admin.getJob(plain)).env.TRACEPARENT).toBeUndefined();
    // A malformed header starts no trace.
    const bad = await launchWithHeaders(t.ctl.url, { traceparent: 'not-a-traceparent' });
    expect((await t.admin.getJob(bad)).env.TRACEPARENT).toBeUndefined();
    // The submitter's own TRACEPARENT wins.
    const own = `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`;
    const res = await fetch(`${t.ctl.url}/api/v1/jobs`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${ADMIN}`,
        'content-type': 'application/json',
        traceparent: `00-${TRACE_ID}-${PARENT}-01`,
      },
      body: JSON.stringify({ command: ['true'], env: { TRACEPARENT: own } }),
    });
    const { job_id } = (await res.json()) as { job_id: string };
    expect((await t.admin.getJob(job_id)).env.TRACEPARENT).toBe(own);
  });
});

const receivers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  for (const r of receivers.splice(0)) await r.close();
});

forEachDialect((dialect) => {
  const start = controllers(dialect);

  it('exports spans over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; the job continues the server span', async () => {
    const receiver = await otlpReceiver();
    receivers.push(receiver);
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    const t = await start();
    const id = await launchWithHeaders(t.ctl.url, { traceparent: `00-${TRACE_ID}-${PARENT}-01` });
    const tp = (await t.admin.getJob(id)).env.TRACEPARENT ?? '';
    const [, traceId, spanId] = tp.split('-');
    expect(traceId).toBe(TRACE_ID);
    const span = await eventually(
      () => receiver.spans().find((s) => s.traceId === TRACE_ID && s.name === 'POST /api/v1/jobs'),
      15_000,
      100,
    );
    // The job's parent is the controller's server span, itself a child of the caller's span.
    expect(span.spanId).toBe(spanId);
    expect(span.parentSpanId).toBe(PARENT);
  });
});
