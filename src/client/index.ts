/**
 * `runplane/client`: the public entry for programs that talk to runplane — the typed HTTP
 * client and the learner that training scripts use to heartbeat and obey commands.
 */
export type {
  CommandEnvelope,
  CommandView,
  Heartbeat,
  HeartbeatAccepted,
  MetricsView,
  RunCreate,
  RunListQuery,
  RunView,
} from '../runs/schemas.js';
export { ApiError, RunplaneClient } from './client.js';
export {
  backoffMs,
  type FinishStatus,
  type HeartbeatStatus,
  Learner,
  type LearnerOptions,
  type LearnerState,
  type LearnerTimers,
  type TerminatePayload,
  type TunePayload,
} from './learner.js';
