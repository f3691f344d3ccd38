import { createHash } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import { notFound } from '../shared/errors.js';
import { newId, newSecret } from '../shared/ids.js';
import type { Executor, Store } from '../store/database.js';
import type { Principal, Role } from './model.js';
import { tokenRepo } from './token-repo.js';

const hash = (token: string) => createHash('sha256').update(token).digest('hex');
const CACHE_MS = 5000;

/**
 * Issues and verifies bearer tokens. Tokens are 256-bit random secrets, so a plain SHA-256
 * is the right hash (no password stretching needed). Verifications are cached for a few
 * seconds because workers and learners call often; a revocation takes effect within that.
 */
export class TokenService {
  private readonly cache = new Map<string, { principal: Principal | null; until: number }>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async create(
    role: Role,
    name: string,
    opts: { runId?: string; secret?: string; tx?: Executor } = {},
  ): Promise<{ token_id: string; token: string; role: Role; name: string }> {
    const now = this.clock.now();
    const token = opts.secret ?? newSecret('rp');
    const row = {
      id: newId('tok', now),
      name,
      role,
      token_hash: hash(token),
      run_id: opts.runId ?? null,
      created_at: now,
      revoked_at: null,
    };
    if (opts.tx) await tokenRepo.insert(opts.tx, row);
    else await this.store.write((tx) => tokenRepo.insert(tx, row));
    return { token_id: row.id, token, role, name };
  }

  /** Makes sure a given secret (e.g. RUNPLANE_ADMIN_TOKEN) is a valid admin token. */
  async ensure(secret: string, role: Role, name: string): Promise<void> {
    const existing = await tokenRepo.byHash(this.store.db, hash(secret));
    if (!existing) await this.create(role, name, { secret });
  }

  async verify(token: string): Promise<Principal | null> {
    const now = this.clock.now();
    const cached = this.cache.get(token);
    if (cached && cached.until > now) return cached.principal;
    const row = await tokenRepo.byHash(this.store.db, hash(token));
    const principal =
      row && row.revoked_at === null
        ? { token_id: row.id, name: row.name, role: row.role as Role, run_id: row.run_id }
        : null;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(token, { principal, until: now + CACHE_MS });
    return principal;
  }

  async list() {
    return (await tokenRepo.list(this.store.db)).map((r) => ({
      token_id: r.id,
      name: r.name,
      role: r.role,
      created_at: new Date(r.created_at).toISOString(),
      revoked_at: r.revoked_at === null ? null : new Date(r.revoked_at).toISOString(),
    }));
  }

  async revoke(id: string): Promise<void> {
    const ok = await this.store.write((tx) => tokenRepo.revoke(tx, id, this.clock.now()));
    if (!ok) throw notFound('token', id);
    this.cache.clear();
  }
}
