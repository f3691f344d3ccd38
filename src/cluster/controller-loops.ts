import type { Logger } from 'pino';
import type { EventSystem } from '../events/system.js';
import { Components } from './components.js';

/** Something with a timer or loop that can be stopped and started again. */
interface Loop {
  start(): void;
  stop(): Promise<void>;
}

export interface ControllerLoops {
  ping(): Promise<void>;
  events: EventSystem;
  scheduler: Loop;
  liveness: Loop;
  workerHealth: Loop;
  auditExport: Loop;
  pods: Loop;
  pipelines: Loop;
  /** The sweep controller runs on every replica: it holds a lease per sweep. */
  sweeps: Loop;
}

/**
 * The controller's loops as layered components. The leader-only ones run once across replicas:
 * they start when this replica is elected and stop when it is deposed. Their database work is
 * still guarded by transaction-scoped locks where it was (scheduling pass, liveness sweep,
 * worker health sweep), so a deposed leader finishing a round cannot double-act.
 */
export function controllerComponents(loops: ControllerLoops, log: Logger): Components {
  let eventsStarted = false;
  const loop = (l: Loop) => ({ start: () => l.start(), stop: () => l.stop() });
  return new Components(log)
    .add({ name: 'store', layer: 1, start: loops.ping, stop: () => undefined })
    .add({
      name: 'events',
      layer: 2,
      dependsOn: ['store'],
      leaderOnly: true,
      async start() {
        const { relay, dlq } = loops.events;
        // The lanes' cursors are shared by name across replicas: resume from the stored ones.
        await relay.reloadCursors();
        if (!eventsStarted) {
          eventsStarted = true;
          await loops.events.start();
          return;
        }
        relay.start();
        dlq.start();
      },
      async stop() {
        await loops.events.dlq.stop();
        await loops.events.relay.stop();
      },
    })
    .add({ name: 'scheduler', layer: 2, dependsOn: ['store'], leaderOnly: true, ...loop(loops.scheduler) })
    .add({ name: 'liveness', layer: 2, dependsOn: ['store'], leaderOnly: true, ...loop(loops.liveness) })
    .add({
      name: 'worker-health',
      layer: 2,
      dependsOn: ['store'],
      leaderOnly: true,
      ...loop(loops.workerHealth),
    })
    .add({
      name: 'audit-export',
      layer: 3,
      dependsOn: ['store'],
      leaderOnly: true,
      ...loop(loops.auditExport),
    })
    .add({ name: 'pods', layer: 3, dependsOn: ['events'], leaderOnly: true, ...loop(loops.pods) })
    .add({ name: 'pipelines', layer: 3, dependsOn: ['events'], leaderOnly: true, ...loop(loops.pipelines) })
    .add({ name: 'sweeps', layer: 3, dependsOn: ['store'], ...loop(loops.sweeps) });
}
