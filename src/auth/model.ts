/**
 * Auth — pure model.
 *
 * Roles: admin (everything, including tokens), operator (submit and control work), viewer
 * (read only), worker (the agent protocol and endpoint registration), learner (one run only;
 * issued with a run by the run orchestrator), simulator (posts pod results only; given to the
 * pod evaluator's simulation jobs).
 */
export const ROLES = ['admin', 'operator', 'viewer', 'worker', 'learner', 'simulator'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  token_id: string;
  name: string;
  role: Role;
  /** For learner tokens: the only run they may act on. */
  run_id: string | null;
}

/** Who may call what; routes name one of these. */
export const ACCESS = {
  read: ['admin', 'operator', 'viewer'],
  operate: ['admin', 'operator'],
  agent: ['admin', 'worker'],
  endpointsWrite: ['admin', 'operator', 'worker'],
  endpointsRead: ['admin', 'operator', 'viewer', 'worker'],
  admin: ['admin'],
  /** A run's own learner (only its run: the auth hook checks the path's run_id) or an operator. */
  learner: ['admin', 'operator', 'learner'],
  /** Reading one run: anyone who may read, and that run's learner. */
  runRead: ['admin', 'operator', 'viewer', 'learner'],
  /** Posting pod results: operators, and the simulator token of the pod evaluator's jobs. */
  podResults: ['admin', 'operator', 'simulator'],
} as const satisfies Record<string, readonly Role[]>;
export type Access = keyof typeof ACCESS;
