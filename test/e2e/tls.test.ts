/**
 * TLS with client certificates. A CA, a server certificate and client certificates are made
 * with `openssl` in a temp dir. First a bare app (createApp + a route of this file) shows what
 * requestMeta records: the fingerprint of a certificate the client CA verified, and nothing for
 * no certificate or one from another CA. Then `runplane up --tls-cert --tls-key --tls-client-ca`
 * runs as a real process: bearer tokens still authenticate, a command sent with the client
 * certificate is audited with its fingerprint, and the CLI (trusting the CA through
 * NODE_EXTRA_CA_CERTS) verifies, tampering is named, and the export runs.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID, X509Certificate } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/auth/token-service.js';
import { type App, createApp } from '../../src/http/app.js';
import { Metrics } from '../../src/http/metrics.js';
import { requestMeta } from '../../src/http/request-meta.js';
import type { AuditEntryView, VerifyResult } from '../../src/runs/audit-model.js';
import { systemClock } from '../../src/shared/clock.js';
import { cleanup, MARKER, MARKER_ENV, REPO_ROOT, runCli, tempDir } from '../helpers/processes.js';
import { freshStore, type TestStore } from '../helpers/store.js';

interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from a CA the server does not know. */
  rogueCert: string;
  rogueKey: string;
}

const openssl = (dir: string, args: string[]) =>
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });

/** A CA, a server certificate for 127.0.0.1 and a client certificate it signed; a rogue client. */
function makePki(): Pki {
  const dir = tempDir('runplane-tls-');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const selfSigned = (name: string, cn: string) =>
    openssl(dir, [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ]);
  const signed = (name: string, cn: string, ca: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, [
      'req',
      '-new',
      ...ec,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${cn}`,
    ]);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.pem`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    ]);
  };
  selfSigned('ca', 'runplane test CA');
  selfSigned('rogue-ca', 'someone else');
  signed(
    'server',
    'localhost',
    'ca',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  signed('client', 'alice@example.com', 'ca', 'extendedKeyUsage=clientAuth\n');
  signed('rogue', 'mallory@example.com', 'rogue-ca', 'extendedKeyUsage=clientAuth\n');
  const p = (f: string) => join(dir, f);
  return {
    dir,
    ca: p('ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
    rogueCert: p('rogue.pem'),
    rogueKey: p('rogue.key'),
  };
}

interface Reply {
  status: number;
  body: unknown;
}

/** One HTTPS request on a fresh connection (no agent: each test picks its own client certificate). */
function httpsJson(
  url: string,
  opts: { ca: string; method?: string; token?: string; body?: unknown; cert?: string; key?: string },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = request(
      url,
      {
        method: opts.method ?? 'GET',
        agent: false,
        ca: readFileSync(opts.ca),
        ...(opts.cert && opts.key ? { cert: readFileSync(opts.cert), key: readFileSync(opts.key) } : {}),
        headers: {
          'user-agent': 'tls-e2e/1',
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as unknown) : null }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const fingerprint = (pem: string) => new X509Certificate(readFileSync(pem)).fingerprint256;

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(async () => {
  await cleanup();
});

describe('requestMeta over TLS', () => {
  let ts: TestStore;
  let app: App;
  let url: string;

  beforeAll(async () => {
    ts = await freshStore('sqlite');
    app = await createApp({
      logger: pino({ level: 'silent' }),
      tokens: new TokenService(ts.store, systemClock),
      metrics: new Metrics({ jobsByState: async () => [], workersByHealth: async () => [] }),
      version: 'test',
      https: {
        cert: readFileSync(pki.serverCert),
        key: readFileSync(pki.serverKey),
        ca: readFileSync(pki.ca),
        requestCert: true,
      },
    });
    app.get('/meta', { config: { public: true } }, async (req) => requestMeta(req));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    url = `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/meta`;
  });
  afterAll(async () => {
    await app?.close();
    await ts?.cleanup();
  });

  it('records the fingerprint of a client certificate the client CA verified', async () => {
    const r = await httpsJson(url, { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey });
    expect(r).toEqual({
      status: 200,
      body: {
        source_ip: '127.0.0.1',
        user_agent: 'tls-e2e/1',
        client_cert_fingerprint: fingerprint(pki.clientCert),
      },
    });
    // The format openssl prints, so an operator can match it by hand.
    const printed = openssl(pki.dir, [
      'x509',
      '-in',
      pki.clientCert,
      '-noout',
      '-fingerprint',
      '-sha256',
    ]).toString();
    expect(printed).toContain(`=${fingerprint(pki.clientCert)}`);
  });

  it('records none without a certificate, or for one the client CA did not sign (not refused either)', async () => {
    const none = await httpsJson(url, { ca: pki.ca });
    expect(none).toMatchObject({
      status: 200,
      body: { client_cert_fingerprint: null, source_ip: '127.0.0.1' },
    });
    const rogue = await httpsJson(url, { ca: pki.ca, cert: pki.rogueCert, key: pki.rogueKey });
    expect(rogue).toMatchObject({ status: 200, body: { client_cert_fingerprint: null } });
  });
});

describe('runplane up with --tls-cert --tls-key --tls-client-ca', () => {
  let proc: ChildProcess;
  let url: string;
  let token: string;
  let dataDir: string;
  const cliEnv = () => ({ NODE_EXTRA_CA_CERTS: pki.ca });
  const cli = (args: string[]) => runCli(['--url', url, '--token', token, ...args], cliEnv());

  afterAll(async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
  });

  beforeAll(async () => {
    dataDir = tempDir('runplane-tls-data-');
    const env: NodeJS.ProcessEnv = { [MARKER_ENV]: MARKER };
    for (const [k, v] of Object.entries(process.env))
      if (v !== undefined && !k.startsWith('RUNPLANE_')) env[k] = v;
    // The embedded worker connects over HTTPS too: it trusts the CA the way any Node client does.
    env.NODE_EXTRA_CA_CERTS = pki.ca;
    const log = openSync(join(dataDir, 'up.log'), 'a');
    proc = spawn(
      process.execPath,
      [
        join(REPO_ROOT, 'bin', 'runplane.js'),
        'up',
        '--port',
        '0',
        '--data-dir',
        dataDir,
        '--workers',
        '1',
        '--kill-grace',
        '1s',
        '--tls-cert',
        pki.serverCert,
        '--tls-key',
        pki.serverKey,
        '--tls-client-ca',
        pki.ca,
        '--audit-export-dir',
        join(dataDir, 'audit-exports'),
      ],
      { cwd: REPO_ROOT, env, stdio: ['ignore', log, 'pipe'] },
    );
    closeSync(log);
    let stderr = '';
    url = await new Promise<string>((resolve, reject) => {
      proc.stderr?.setEncoding('utf8').on('data', (c: string) => {
        stderr += c;
        const m = /runplane is up at (\S+)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      proc.once('exit', (code) => reject(new Error(`runplane up exited (${code}):\n${stderr}`)));
    });
    token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  });

  it('serves HTTPS; bearer tokens authenticate with or without a client certificate', async () => {
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect((await httpsJson(`${url}/api/v1/audit`, { ca: pki.ca })).status).toBe(401);
    expect((await httpsJson(`${url}/api/v1/audit`, { ca: pki.ca, token })).status).toBe(200);
    const withCert = await httpsJson(`${url}/api/v1/audit`, {
      ca: pki.ca,
      token,
      cert: pki.clientCert,
      key: pki.clientKey,
    });
    expect(withCert.status).toBe(200);
    // The embedded worker registered over HTTPS.
    const workers = await httpsJson(`${url}/api/v1/workers`, { ca: pki.ca, token });
    expect((workers.body as { workers: unknown[] }).workers).toHaveLength(1);
  });

  it('audits a command sent with a client certificate with its fingerprint; the CLI verifies and names tampering', async () => {
    const mtls = { ca: pki.ca, token, cert: pki.clientCert, key: pki.clientKey };
    const created = await httpsJson(`${url}/api/v1/runs`, { ...mtls, method: 'POST', body: { name: 'tls' } });
    expect(created.status).toBe(201);
    const runId = (created.body as { run_id: string }).run_id;
    const commandId = randomUUID();
    const issued = await httpsJson(`${url}/api/v1/runs/${runId}/commands`, {
      ...mtls,
      method: 'POST',
      body: {
        id: commandId,
        type: 'tune',
        issued_at: new Date().toISOString(),
        actor: { type: 'operator', id: 'alice@example.com' },
        payload: { learning_rate: 0.01 },
      },
    });
    expect(issued.status).toBe(202);
    // Without a certificate the command is accepted as well, and audited without a fingerprint.
    const plain = await httpsJson(`${url}/api/v1/runs/${runId}/commands`, {
      ca: pki.ca,
      token,
      method: 'POST',
      body: {
        id: randomUUID(),
        type: 'tune',
        issued_at: new Date().toISOString(),
        actor: { type: 'operator', id: 'bob@example.com' },
        payload: { entropy_coef: 0.01 },
      },
    });
    expect(plain.status).toBe(202);

    const list = await httpsJson(`${url}/api/v1/audit?run_id=${runId}&action=command.tune`, {
      ca: pki.ca,
      token,
    });
    const entries = (list.body as { entries: AuditEntryView[] }).entries;
    expect(entries.map((e) => [e.actor.id, e.client_cert_fingerprint, e.source_ip, e.user_agent])).toEqual([
      ['bob@example.com', null, '127.0.0.1', 'tls-e2e/1'],
      ['alice@example.com', fingerprint(pki.clientCert), '127.0.0.1', 'tls-e2e/1'],
    ]);
    const tuned = entries[1]!;
    expect(tuned.envelope).toMatchObject({ id: commandId, type: 'tune', payload: { learning_rate: 0.01 } });

    const ok = await cli(['audit', 'verify']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^audit chain ok: \d+ entries, head [0-9a-f]{64}\n$/);

    const listed = await cli(['audit', 'list', '--run', runId, '--limit', '10']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('command.tune');
    expect(listed.stdout).toContain(fingerprint(pki.clientCert).slice(0, 23));

    const exported = await cli(['audit', 'export', '--json']);
    expect(exported.code).toBe(0);
    const manifest = JSON.parse(exported.stdout) as { exported: number; object: string; head_hash: string };
    expect(manifest.exported).toBeGreaterThanOrEqual(3);
    const lines = readFileSync(join(dataDir, 'audit-exports', manifest.object), 'utf8')
      .trimEnd()
      .split('\n');
    expect((JSON.parse(lines[lines.length - 1]!) as AuditEntryView).entry_hash).toBe(manifest.head_hash);
    expect((await cli(['audit', 'export'])).stdout).toBe('nothing to export\n');

    // Tamper with the stored command entry behind the controller's back.
    const db = new SQLite(join(dataDir, 'runplane.db'));
    try {
      db.pragma('busy_timeout = 5000');
      db.prepare('update control_audit set actor_id = ? where id = ?').run('mallory@example.com', tuned.id);
    } finally {
      db.close();
    }
    const broken = await cli(['audit', 'verify']);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain(`entry seq ${tuned.seq} (${tuned.id}): ENTRY_HASH_MISMATCH`);
    const json = await cli(['audit', 'verify', '--json']);
    expect(json.code).toBe(1);
    expect((JSON.parse(json.stdout) as VerifyResult).first_bad).toEqual({
      seq: tuned.seq,
      id: tuned.id,
      reason: 'ENTRY_HASH_MISMATCH',
    });
  });
});
