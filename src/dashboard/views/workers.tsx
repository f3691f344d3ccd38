import type { Worker } from '../api-types.js';
import { type Column, DataTable } from '../components/data-table.js';
import { StateBadge } from '../components/state-badge.js';
import { ago, fmtMb } from '../format.js';
import { href } from '../router.js';
import { useSession } from '../session.js';
import { Labels, LoadState, Meter, useLoad, useNow } from '../ui.js';

/** The worker table's columns; `now` for the heartbeat's age. */
function workerColumns(now: number): Column<Worker>[] {
  return [
    {
      head: 'Name',
      title: (w) => w.worker_id,
      cell: (w) => (
        <>
          {w.name}
          {w.device_type ? <span class="muted"> · {w.device_type}</span> : null}
        </>
      ),
    },
    { head: 'Health', cell: (w) => <StateBadge kind="worker" value={w.health} /> },
    {
      head: 'CPU',
      cell: (w) => (
        <Meter used={w.used.cpu} total={w.capacity.cpu} label={`${w.used.cpu} / ${w.capacity.cpu}`} />
      ),
    },
    {
      head: 'Memory',
      cell: (w) => (
        <Meter
          used={w.used.memory_mb}
          total={w.capacity.memory_mb}
          label={`${fmtMb(w.used.memory_mb)} / ${fmtMb(w.capacity.memory_mb)}`}
        />
      ),
    },
    {
      head: 'GPU',
      cell: (w) =>
        w.capacity.gpu > 0 ? (
          <Meter used={w.used.gpu} total={w.capacity.gpu} label={`${w.used.gpu} / ${w.capacity.gpu}`} />
        ) : (
          <span class="muted">—</span>
        ),
    },
    { head: 'Labels', cell: (w) => <Labels labels={w.labels} /> },
    {
      head: 'Running attempts',
      cell: (w) =>
        w.running_attempts.length === 0 ? (
          <span class="muted">idle</span>
        ) : (
          w.running_attempts.map((a) => (
            <div key={a.attempt_id}>
              <a href={href(['jobs', a.job_id])}>{a.job_id}</a> <StateBadge kind="job" value={a.state} />
            </div>
          ))
        ),
    },
    { head: 'Last heartbeat', cell: (w) => ago(w.last_heartbeat_at, now) },
  ];
}

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
          <DataTable
            testid="workers-table"
            columns={workerColumns(now)}
            rows={list}
            rowKey={(w) => w.worker_id}
            row={(w) => ({ 'data-worker-id': w.worker_id })}
            empty={
              <>
                No workers registered. Start one with <code>runplane worker --controller URL</code>.
              </>
            }
          />
        </>
      )}
    </section>
  );
}
