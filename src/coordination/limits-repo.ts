import type { Executor } from '../store/database.js';

const ACTIVE_JOB_STATES = ['PENDING', 'BUILDING', 'RUNNING'];

/** SQL for task limits and queue monitors: counts read at decision time, one statement each. */
export const limitsRepo = {
  /** Jobs of a task type (by label) that are waiting or running, across the cluster. */
  async activeOfType(db: Executor, labelKey: string, taskType: string): Promise<number> {
    const r = await db
      .selectFrom('jobs as j')
      .innerJoin('job_labels as l', 'l.job_id', 'j.id')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('l.key', '=', labelKey)
      .where('l.value', '=', taskType)
      .where('j.state', 'in', ACTIVE_JOB_STATES)
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  },

  /** Jobs of a task type running on a node (worker id or name). */
  async activeOfTypeOnNode(db: Executor, labelKey: string, taskType: string, node: string): Promise<number> {
    const r = await db
      .selectFrom('jobs as j')
      .innerJoin('job_labels as l', 'l.job_id', 'j.id')
      .innerJoin('attempts as a', 'a.id', 'j.current_attempt_id')
      .innerJoin('workers as w', 'w.id', 'a.worker_id')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('l.key', '=', labelKey)
      .where('l.value', '=', taskType)
      .where('j.state', 'in', ACTIVE_JOB_STATES)
      .where((eb) => eb.or([eb('w.id', '=', node), eb('w.name', '=', node)]))
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  },

  /** A worker's labels (JSON), by id or name; resource usage may be reported there. */
  async workerLabels(db: Executor, node: string): Promise<string | undefined> {
    const r = await db
      .selectFrom('workers')
      .select('labels')
      .where((eb) => eb.or([eb('id', '=', node), eb('name', '=', node)]))
      .executeTakeFirst();
    return r?.labels;
  },

  async pendingJobs(db: Executor): Promise<number> {
    const r = await db
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('state', '=', 'PENDING')
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  },

  async pendingDeadLetters(db: Executor): Promise<number> {
    const r = await db
      .selectFrom('dead_letters')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  },

  async lastEventSeq(db: Executor): Promise<number> {
    const r = await db
      .selectFrom('events')
      .select((eb) => eb.fn.max('seq').as('m'))
      .executeTakeFirst();
    return Number(r?.m ?? 0);
  },
};
