import type { RunplaneClient } from '../client/client.js';
import { ApiError } from '../client/client.js';
import type { PollResponse, ReportRequest, WorkerRegister, WorkerRegistered } from '../jobs/schemas.js';
import { AppError } from '../shared/errors.js';

/** How an agent talks to its controller (over HTTP; tests may put something else behind it). */
export interface ControllerLink {
  readonly controllerUrl: string;
  register(req: WorkerRegister): Promise<WorkerRegistered>;
  heartbeat(workerId: string): Promise<void>;
  poll(
    workerId: string,
    known: string[],
    stopping: string[],
    waitMs: number,
    signal: AbortSignal,
  ): Promise<PollResponse>;
  report(workerId: string, body: ReportRequest): Promise<void>;
  deregister(workerId: string): Promise<void>;
}

/** True when the controller does not know this worker (e.g. its database was reset). */
export function isUnknownWorker(err: unknown): boolean {
  return (err instanceof ApiError || err instanceof AppError) && err.status === 404;
}

export class HttpLink implements ControllerLink {
  constructor(private readonly client: RunplaneClient) {}
  get controllerUrl(): string {
    return this.client.baseUrl;
  }
  register(req: WorkerRegister) {
    return this.client.registerWorker(req);
  }
  async heartbeat(workerId: string) {
    await this.client.workerHeartbeat(workerId);
  }
  poll(workerId: string, known: string[], stopping: string[], waitMs: number, signal: AbortSignal) {
    return this.client.poll(workerId, known, waitMs, signal, stopping);
  }
  async report(workerId: string, body: ReportRequest) {
    await this.client.report(workerId, body);
  }
  async deregister(workerId: string) {
    await this.client.deregisterWorker(workerId);
  }
}
