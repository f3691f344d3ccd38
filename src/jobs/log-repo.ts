import type { Executor } from '../store/database.js';

export interface LogChunk {
  attempt_id: string;
  stream: 'stdout' | 'stderr';
  data: string;
}

/** SQL for attempt output shipped by workers. */
export const logRepo = {
  async append(tx: Executor, chunks: readonly LogChunk[], now: number): Promise<void> {
    for (let i = 0; i < chunks.length; i += 300) {
      await tx
        .insertInto('log_chunks')
        .values(chunks.slice(i, i + 300).map((c) => ({ ...c, created_at: now })))
        .execute();
    }
  },

  async read(db: Executor, attemptId: string): Promise<Array<{ stream: string; data: string }>> {
    return db
      .selectFrom('log_chunks')
      .select(['stream', 'data'])
      .where('attempt_id', '=', attemptId)
      .orderBy('seq')
      .execute();
  },
};
