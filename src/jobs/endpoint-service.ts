import { event } from '../events/catalog.js';
import { outboxRepo } from '../events/outbox-repo.js';
import type { Clock } from '../shared/clock.js';
import { conflict, invalid, notFound } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Store } from '../store/database.js';
import { endpointRepo } from './endpoint-repo.js';
import { jobRepo } from './job-repo.js';
import type { EndpointRequest, EndpointView } from './schemas.js';
import { endpointView } from './views.js';

/** The endpoint registry: RegisterEndpoint, UnregisterEndpoint, LookupEndpoint, ListEndpoints. */
export class EndpointService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async register(req: EndpointRequest): Promise<EndpointView> {
    const now = this.clock.now();
    return this.store.write(async (tx) => {
      const job = await jobRepo.get(tx, req.job_id);
      if (!job)
        throw invalid([{ field: 'job_id', code: 'UNKNOWN_JOB', message: `job ${req.job_id} not found` }]);
      // A job registers while it starts up (BUILDING) or runs; an ended job has no endpoints.
      if (job.state !== 'RUNNING' && job.state !== 'BUILDING') {
        throw conflict(
          'JOB_NOT_RUNNING',
          `job ${job.id} is ${job.state}; only a running job can register endpoints`,
        );
      }
      const row = {
        id: newId('ep', now),
        name: req.name,
        address: req.address,
        metadata: JSON.stringify(req.metadata ?? {}),
        job_id: job.id,
        created_at: now,
      };
      await endpointRepo.insert(tx, row);
      await outboxRepo.append(
        tx,
        [
          event('endpoint.registered', row.id, {
            endpoint_id: row.id,
            name: row.name,
            job_id: job.id,
            address: row.address,
          }),
        ],
        now,
      );
      return endpointView(row);
    });
  }

  async unregister(id: string): Promise<void> {
    const now = this.clock.now();
    await this.store.write(async (tx) => {
      const row = await endpointRepo.get(tx, id);
      if (!row) throw notFound('endpoint', id);
      await endpointRepo.delete(tx, id);
      await outboxRepo.append(
        tx,
        [
          event('endpoint.removed', id, {
            endpoint_id: id,
            name: row.name,
            job_id: row.job_id,
            reason: 'unregistered',
          }),
        ],
        now,
      );
    });
  }

  async find(by: { name?: string | undefined; prefix?: string | undefined }): Promise<EndpointView[]> {
    return (await endpointRepo.findLive(this.store.db, by)).map(endpointView);
  }
}
