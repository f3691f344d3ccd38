import pg from 'pg';
import type { LeaderLock } from './leader-elector.js';

/**
 * The leader lock on Postgres: a session advisory lock held on a connection of its own, outside
 * the store's pool, so that nothing else ever runs on (or returns to the pool) the session that
 * holds it. The lock lives exactly as long as that session: a replica killed with SIGKILL, or
 * cut off from the database, loses it when Postgres ends the session, and a follower's next try
 * gets it. The key is per schema, so schemas of one database (tenants, tests) elect apart.
 */
export class PostgresLeaderLock implements LeaderLock {
  readonly kind = 'postgres-advisory';
  private client: pg.Client | null = null;
  private held = false;
  private lostSignal: { promise: Promise<void>; resolve: () => void } | null = null;
  private readonly url: string;
  private readonly schema: string | null;

  /**
   * @param databaseUrl the store's postgres URL; `?schema=` picks the schema as Store.open does.
   * @param timeoutMs bound on each statement and on connecting, so a hung session is noticed.
   */
  constructor(
    databaseUrl: string,
    private readonly timeoutMs = 5000,
  ) {
    const parsed = new URL(databaseUrl);
    this.schema = parsed.searchParams.get('schema');
    parsed.searchParams.delete('schema');
    this.url = parsed.toString();
  }

  async tryAcquire(): Promise<boolean> {
    const client = this.client ?? (await this.connect());
    const r = await client.query<{ ok: boolean }>(
      `select pg_try_advisory_lock(hashtext('runplane.leader:' || current_database() || ':' || current_schema())) as ok`,
    );
    this.held = r.rows[0]?.ok === true;
    return this.held;
  }

  lost(): Promise<void> {
    this.lostSignal ??= deferred();
    return this.lostSignal.promise;
  }

  async check(): Promise<void> {
    const client = this.client;
    if (!client) throw new Error('the leader lock session is closed');
    try {
      await client.query('select 1');
    } catch (err) {
      // A session that does not answer may still hold the lock server-side: drop it so the
      // server ends it, and never use it again.
      this.drop(client);
      throw err;
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    if (!client) return;
    try {
      // Ending the session releases the lock too; unlocking first makes the hand-over immediate
      // even where a pooler keeps server sessions open.
      if (this.held) await client.query('select pg_advisory_unlock_all()');
    } finally {
      this.held = false;
      await client.end().catch(() => undefined);
    }
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.url,
      connectionTimeoutMillis: this.timeoutMs,
      query_timeout: this.timeoutMs,
      keepAlive: true,
      ...(this.schema ? { options: `-c search_path=${this.schema}` } : {}),
    });
    const dropped = () => this.drop(client);
    // Without an 'error' listener a dropped connection would crash the process.
    client.on('error', dropped);
    client.on('end', dropped);
    await client.connect();
    this.client = client;
    return client;
  }

  private drop(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    const wasHeld = this.held;
    this.held = false;
    client.end().catch(() => undefined);
    if (wasHeld) {
      this.lostSignal?.resolve();
      this.lostSignal = null;
    }
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
