import type { Worker } from '../api-types.js';
import { ago, fmtMb } from '../format.js';
import { href } from '../router.js';
import { useSession } from '../session.js';
import { Badge, Labels, LoadState, Meter, useLoad, useNow } from '../ui.js';

/** Workers: capacity bars (used of capacity), health, and the attempts each is running. */
export function WorkersView() {
  const { api } = useSession();
  const workers = useLoad((signal) => api.get<{ workers: Worker[] }>('/workers', undefined, signal), [api], {
    pollMs: 3000,
  });
  const now = useNow(5000);
  const list = workers.data?.workers ?? [];
  const total = list.reduce(
    (t, w) => ({
      cpu: t.cpu + w.capacity.cpu,
      usedCpu: t.usedCpu + w.used.cpu,
      mem: t.mem + w.capacity.memory_mb,
      usedMem: t.usedMem + w.used.memory_mb,
    }),
    { cpu: 0, usedCpu: 0, mem: 0, usedMem: 0 },
  );
  return (
    <section data-view="workers" data-view-ready={workers.data ? 'workers' : undefined}>
      <h2>Workers</h2>
      <LoadState state={workers} what="Workers" />
      {workers.data && (
        <>
          <p class="muted">
            {list.length} workers · cpu {total.usedCpu} of {total.cpu} in use · memory {fmtMb(total.usedMem)}{' '}
            of {fmtMb(total.mem)}
          </p>
          <table class="table" data-testid="workers-table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Health</th>
                <th>CPU</th>
                <th>Memory</th>
                <th>GPU</th>
                <th>Labels</th>
                <th>Running attempts</th>
                <th>Last heartbeat</th>
              </tr>
            </thead>
            <tbody>
              {list.map((w) => (
                <tr key={w.worker_id} data-worker-id={w.worker_id}>
                  <td title={w.worker_id}>
                    {w.name}
                    {w.device_type ? <span class="muted"> · {w.device_type}</span> : null}
                  </td>
                  <td>
                    <Badge value={w.health} />
                  </td>
                  <td>
                    <Meter
                      used={w.used.cpu}
                      total={w.capacity.cpu}
                      label={`${w.used.cpu} / ${w.capacity.cpu}`}
                    />
                  </td>
                  <td>
                    <Meter
                      used={w.used.memory_mb}
                      total={w.capacity.memory_mb}
                      label={`${fmtMb(w.used.memory_mb)} / ${fmtMb(w.capacity.memory_mb)}`}
                    />
                  </td>
                  <td>
                    {w.capacity.gpu > 0 ? (
                      <Meter
                        used={w.used.gpu}
                        total={w.capacity.gpu}
                        label={`${w.used.gpu} / ${w.capacity.gpu}`}
                      />
                    ) : (
                      <span class="muted">—</span>
                    )}
                  </td>
                  <td>
                    <Labels labels={w.labels} />
                  </td>
                  <td>
                    {w.running_attempts.length === 0 ? (
                      <span class="muted">idle</span>
                    ) : (
                      w.running_attempts.map((a) => (
                        <div key={a.attempt_id}>
                          <a href={href(['jobs', a.job_id])}>{a.job_id}</a> <Badge value={a.state} />
                        </div>
                      ))
                    )}
                  </td>
                  <td>{ago(w.last_heartbeat_at, now)}</td>
                </tr>
              ))}
              {list.length === 0 && (
                <tr>
                  <td colSpan={8} class="muted">
                    No workers registered. Start one with <code>runplane worker --controller URL</code>.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
