import type { FastifyReply, FastifyRequest } from 'fastify';
import { serveEvents } from '../http/sse.js';
import type { StatusStream } from './status-stream.js';

export type { StatusStream };

interface StatusPayload {
  run_id: string;
  status: string;
  health: string;
  step: number | null;
  samples_per_sec: number | null;
  loss: number | null;
  last_error: string | null;
}

/** GET /stream/runs: the seed's compact run-status documents as server-sent events. */
export function serveStatusStream(
  stream: StatusStream,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  const only = (req.query as { run_id?: string } | undefined)?.run_id;
  return serveEvents(stream, req, reply, {
    name: 'run-status',
    format: (ev) => {
      const p = ev.payload as StatusPayload;
      if (only !== undefined && p.run_id !== only) return null;
      return {
        run_id: p.run_id,
        status: p.status,
        health: p.health,
        step: p.step,
        samples_per_sec: p.samples_per_sec,
        loss: p.loss,
        last_error: p.last_error,
        at: new Date(ev.created_at).toISOString(),
      };
    },
  });
}
