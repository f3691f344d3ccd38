/**
 * Invalid and unauthorised requests against a real `runplane up`, through the CLI and raw
 * HTTP: each is refused with its status (and the CLI with its exit code), and nothing is stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/jobs/schemas.js';
import { type CliResult, cleanup, cliAs, runCli, startUp, type UpProcess } from '../helpers/processes.js';

let up: UpProcess;
let cli: (args: string[]) => Promise<CliResult>;
const tokens: Record<'operator' | 'viewer' | 'worker', string> = { operator: '', viewer: '', worker: '' };

beforeAll(async () => {
  up = await startUp({ workers: 0 });
  cli = cliAs(up.url, up.adminToken);
  for (const role of ['operator', 'viewer', 'worker'] as const) {
    const r = await cli(['token', 'create', '--role', role]);
    expect(r.code, r.stderr).toBe(0);
    tokens[role] = r.stdout.trim();
  }
});

afterAll(async () => {
  await cleanup();
});

interface Answer {
  status: number;
  body: {
    error?: {
      code: string;
      message: string;
      details: Array<{ field: string; code: string; message: string }>;
    };
  };
}

async function http(
  method: string,
  path: string,
  opts: { token?: string | null; body?: string; type?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? up.adminToken : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (opts.type) headers['content-type'] = opts.type;
  const res = await fetch(up.url + path, {
    method,
    headers,
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
  const text = await res.text();
  let body: Answer['body'] = {};
  try {
    body = JSON.parse(text) as Answer['body'];
  } catch {
    // not JSON (e.g. /metrics)
  }
  return { status: res.status, body };
}

async function storedJobs(): Promise<JobView[]> {
  const r = await cli(['job', 'list', '--all', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { jobs: JobView[] }).jobs;
}

describe('invalid requests are rejected and store nothing', () => {
  it('through the CLI: exit code 6 for an invalid job, 2 for a usage error', async () => {
    const negative = await cli(['job', 'submit', '--cpu', '-1', '--', 'true']);
    expect(negative.code).toBe(6);
    expect(negative.stderr).toContain('resources.cpu');
    expect(negative.stdout).toBe('');

    const badName = await cli(['job', 'submit', '--name', 'a/b', '--', 'true']);
    expect(badName.code).toBe(6);

    const noCommand = await cli(['job', 'submit']);
    expect(noCommand.code).toBe(2);

    const notANumber = await cli(['job', 'submit', '--cpu', 'lots', '--', 'true']);
    expect(notANumber.code).toBe(2);

    const unknownJob = await cli(['job', 'status', 'job_does_not_exist']);
    expect(unknownJob.code).toBe(3);

    expect(await storedJobs()).toEqual([]);
  });

  it('over raw HTTP: 415, 400, 413 and 422 with field details', async () => {
    const text = await http('POST', '/api/v1/jobs', { type: 'text/plain', body: 'sleep 1' });
    expect(text.status).toBe(415);
    expect(text.body.error?.code).toBe('UNSUPPORTED_MEDIA_TYPE');

    const malformed = await http('POST', '/api/v1/jobs', { type: 'application/json', body: '{"command": [' });
    expect(malformed.status).toBe(400);

    const huge = await http('POST', '/api/v1/jobs', {
      type: 'application/json',
      body: JSON.stringify({ command: ['echo', 'x'.repeat(2 * 1024 * 1024)] }),
    });
    expect(huge.status).toBe(413);

    const invalid = await http('POST', '/api/v1/jobs', {
      type: 'application/json',
      body: JSON.stringify({
        command: [],
        resources: { cpu: -1 },
        max_retries_failure: 'twice',
        colour: 'blue',
      }),
    });
    expect(invalid.status).toBe(422);
    expect(invalid.body.error?.code).toBe('VALIDATION_FAILED');
    const fields = new Map(invalid.body.error?.details.map((d) => [d.field, d.code]));
    expect(fields.get('command')).toBe('INVALID_LENGTH');
    expect(fields.get('resources.cpu')).toBe('OUT_OF_RANGE');
    expect(fields.get('max_retries_failure')).toBe('INVALID_TYPE');
    expect(fields.get('colour')).toBe('UNKNOWN_FIELD');

    const badQuery = await http('GET', '/api/v1/jobs?state=DANCING');
    expect(badQuery.status).toBe(422);

    expect(await storedJobs()).toEqual([]);
  });

  it('a duplicate name under the same parent is a conflict (exit code 5), and only the first is stored', async () => {
    const first = await cli(['job', 'submit', '--name', 'unique', '--', 'true']);
    expect(first.code, first.stderr).toBe(0);
    const second = await cli(['job', 'submit', '--name', 'unique', '--', 'true']);
    expect(second.code).toBe(5);
    const jobs = await storedJobs();
    expect(jobs.map((j) => j.job_id)).toEqual([first.stdout.trim()]);
  });
});

describe('auth', () => {
  it('a submit without a token is 401, with a viewer token 403; the CLI exits 4', async () => {
    const body = JSON.stringify({ command: ['true'] });
    const none = await http('POST', '/api/v1/jobs', { token: null, type: 'application/json', body });
    expect(none.status).toBe(401);
    const wrong = await http('POST', '/api/v1/jobs', {
      token: 'rp_not_a_token',
      type: 'application/json',
      body,
    });
    expect(wrong.status).toBe(401);
    const viewer = await http('POST', '/api/v1/jobs', {
      token: tokens.viewer,
      type: 'application/json',
      body,
    });
    expect(viewer.status).toBe(403);

    // No --token and no admin.token in the (empty) working directory.
    const anonymous = await runCli(['--url', up.url, 'job', 'submit', '--', 'true']);
    expect(anonymous.code).toBe(4);
    const asViewer = await runCli(['--url', up.url, '--token', tokens.viewer, 'job', 'submit', '--', 'true']);
    expect(asViewer.code).toBe(4);
    expect(asViewer.stderr).toContain('viewer');
    const asWorker = await runCli(['--url', up.url, '--token', tokens.worker, 'job', 'list']);
    expect(asWorker.code).toBe(4);

    // A viewer still reads.
    const reads = await runCli(['--url', up.url, '--token', tokens.viewer, 'job', 'list', '--json']);
    expect(reads.code, reads.stderr).toBe(0);
    expect((JSON.parse(reads.stdout) as { jobs: JobView[] }).jobs.map((j) => j.name)).toEqual(['unique']);
  });

  it('every route of the API refuses a missing token (401)', async () => {
    const doc = (await (await fetch(`${up.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const routes: Array<[string, string]> = [['GET', '/metrics']];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops))
        routes.push([method.toUpperCase(), path.replace(/\{[^}]+\}/g, 'x')]);
    }
    expect(routes.length).toBeGreaterThan(15);
    const refused: string[] = [];
    for (const [method, path] of routes) {
      const r = await http(method, path, {
        token: null,
        ...(method === 'POST' ? { type: 'application/json', body: '{}' } : {}),
      });
      if (r.status !== 401) refused.push(`${method} ${path} -> ${r.status}`);
    }
    expect(refused).toEqual([]);
  });

  it('every route refuses a role it is not for (403)', async () => {
    const cases: Array<[string, string, 'operator' | 'viewer' | 'worker']> = [
      ['POST', '/api/v1/jobs', 'viewer'],
      ['POST', '/api/v1/jobs', 'worker'],
      ['GET', '/api/v1/jobs', 'worker'],
      ['GET', '/api/v1/jobs/x', 'worker'],
      ['POST', '/api/v1/jobs/x/terminate', 'viewer'],
      ['POST', '/api/v1/jobs/x/terminate', 'worker'],
      ['GET', '/api/v1/jobs/x/logs', 'worker'],
      ['POST', '/api/v1/workers', 'operator'],
      ['POST', '/api/v1/workers', 'viewer'],
      ['GET', '/api/v1/workers', 'worker'],
      ['POST', '/api/v1/workers/x/heartbeat', 'viewer'],
      ['POST', '/api/v1/workers/x/poll', 'operator'],
      ['POST', '/api/v1/workers/x/reports', 'viewer'],
      ['DELETE', '/api/v1/workers/x', 'operator'],
      ['POST', '/api/v1/endpoints', 'viewer'],
      ['DELETE', '/api/v1/endpoints/x', 'viewer'],
      ['POST', '/api/v1/tokens', 'operator'],
      ['GET', '/api/v1/tokens', 'viewer'],
      ['DELETE', '/api/v1/tokens/x', 'worker'],
      ['GET', '/metrics', 'worker'],
    ];
    const wrong: string[] = [];
    for (const [method, path, role] of cases) {
      const r = await http(method, path, {
        token: tokens[role],
        ...(method === 'POST' ? { type: 'application/json', body: '{}' } : {}),
      });
      if (r.status !== 403) wrong.push(`${role}: ${method} ${path} -> ${r.status}`);
    }
    expect(wrong).toEqual([]);
    // Nothing was created by any of them.
    expect((await storedJobs()).map((j) => j.name)).toEqual(['unique']);
  });
});
