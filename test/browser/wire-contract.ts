/**
 * Compile-time check (tsc runs it with the rest of test/) that what the server serves fits what
 * the dashboard reads: each server schema type must be assignable to the dashboard's wire type
 * in src/dashboard/api-types.ts. A renamed or retyped field fails `npm run typecheck`.
 * Nothing here runs.
 */

import type { Static } from '@sinclair/typebox';
import type { SinkHealth } from '../../src/alerting/model.js';
import type { HealthReport } from '../../src/cluster/health.js';
import type { ModelSchema, PipelineSchema } from '../../src/coordination/schemas.js';
import type * as Ui from '../../src/dashboard/api-types.js';
import type { DeadLetterStatsWire, DeadLetterWire } from '../../src/events/schemas.js';
import type { AttemptView, EndpointView, JobView, WorkerView } from '../../src/jobs/schemas.js';
import type { LeaderboardEntry, PodView } from '../../src/pods/schemas.js';
import type { AuditEntrySchema, AuditVerifySchema } from '../../src/runs/audit-routes.js';
import type { CommandView, MetricsView, RunView } from '../../src/runs/schemas.js';
import type { AnalysisWire, SweepWire, TrialWire } from '../../src/sweeps/schemas.js';

type Fits<Server extends Dashboard, Dashboard> = [Server, Dashboard];

export type WireContract = [
  Fits<JobView, Ui.Job>,
  Fits<AttemptView, Ui.Attempt>,
  Fits<WorkerView, Ui.Worker>,
  Fits<EndpointView, Ui.Endpoint>,
  Fits<RunView, Ui.Run>,
  Fits<CommandView, Ui.Command>,
  Fits<MetricsView, Ui.RunMetrics>,
  Fits<Static<typeof AuditEntrySchema>, Ui.AuditEntry>,
  Fits<Static<typeof AuditVerifySchema>, Ui.AuditVerify>,
  Fits<SinkHealth, Ui.AlertSink>,
  Fits<DeadLetterWire, Ui.DeadLetter>,
  Fits<DeadLetterStatsWire, Ui.DeadLetterStats>,
  Fits<PodView, Ui.Pod>,
  Fits<LeaderboardEntry, Ui.LeaderboardEntry>,
  Fits<SweepWire, Ui.Sweep>,
  Fits<TrialWire, Ui.Trial>,
  Fits<AnalysisWire, Ui.SweepAnalysis>,
  Fits<Static<typeof PipelineSchema>, Ui.Pipeline>,
  Fits<Static<typeof ModelSchema>, Ui.Model>,
  Fits<HealthReport, Ui.Health>,
];
