import { Gauge, type Registry } from 'prom-client';

/** `runplane_leader`: 1 while this replica is the leader, 0 on a follower. */
export function registerLeaderGauge(registry: Registry, isLeader: () => boolean): void {
  new Gauge({
    name: 'runplane_leader',
    help: 'Whether this replica is the leader (1) that runs the loops that must run once, or a follower (0)',
    registers: [registry],
    collect() {
      this.set(isLeader() ? 1 : 0);
    },
  });
}
