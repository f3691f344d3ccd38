import { useEffect, useRef, useState } from 'preact/hooks';
import type { Job, LogLine } from '../api-types.js';
import { fmtMb, fmtTime } from '../format.js';
import { href, navigate, type Route } from '../router.js';
import { useSession } from '../session.js';
import {
  Action,
  Badge,
  backFrom,
  backTo,
  ErrorBox,
  KeyValues,
  Labels,
  LoadState,
  Pager,
  useLoad,
} from '../ui.js';

/**
 * Jobs: a filterable, paginated table (server-side: state, label and parent filters, cursor
 * pagination, so 100,000 jobs cost one page), and a job's detail with its attempts, a live log
 * tail and terminate.
 */

const STATES = [
  'PENDING',
  'BUILDING',
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
  'KILLED',
  'WORKER_FAILED',
  'UNSCHEDULABLE',
];
const FINAL = new Set(['SUCCEEDED', 'FAILED', 'KILLED', 'WORKER_FAILED', 'UNSCHEDULABLE']);

export function JobsView({ route }: { route: Route }) {
  const id = route.parts[1];
  return id ? <JobDetail id={id} /> : <JobList query={route.query} />;
}

function JobList({ query }: { query: URLSearchParams }) {
  const { api } = useSession();
  const filters = {
    state: query.get('state') ?? '',
    label: query.get('label') ?? '',
    parent: query.get('parent') ?? '',
    limit: query.get('limit') ?? '50',
  };
  const cursor = query.get('cursor');
  const back = backFrom(query);
  const page = useLoad(
    (signal) =>
      api.get<{ jobs: Job[]; next_cursor: string | null }>(
        '/jobs',
        { ...filters, label: filters.label || undefined, cursor },
        signal,
      ),
    [api, query.toString()],
    { pollMs: 5000 },
  );
  const set = (patch: Record<string, string | null>) =>
    navigate(['jobs'], { ...filters, cursor: null, back: null, ...patch });
  const jobs = page.data?.jobs ?? [];
  return (
    <section data-view="jobs" data-view-ready={page.data ? 'jobs' : undefined}>
      <h2>Jobs</h2>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget as HTMLFormElement);
          set({ label: String(f.get('label') ?? ''), parent: String(f.get('parent') ?? '') });
        }}
      >
        <label>
          State
          <select
            value={filters.state}
            onChange={(e) => set({ state: (e.target as HTMLSelectElement).value })}
          >
            <option value="">any</option>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Label
          <input name="label" placeholder="key=value" defaultValue={filters.label} key={filters.label} />
        </label>
        <label>
          Parent
          <input name="parent" placeholder="job id" defaultValue={filters.parent} key={filters.parent} />
        </label>
        <label>
          Per page
          <select
            value={filters.limit}
            onChange={(e) => set({ limit: (e.target as HTMLSelectElement).value })}
          >
            {['50', '100', '500'].map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </label>
        <button type="submit">Filter</button>
      </form>
      <LoadState state={page} what="Jobs" />
      {page.data && (
        <>
          <table class="table" data-testid="jobs-table">
            <thead>
              <tr>
                <th>Name</th>
                <th>State</th>
                <th>Reason</th>
                <th>Resources</th>
                <th>Labels</th>
                <th>Failures</th>
                <th>Submitted</th>
                <th>Finished</th>
              </tr>
            </thead>
            <tbody>
              {jobs.map((j) => (
                <tr key={j.job_id} data-job-id={j.job_id}>
                  <td>
                    <a href={href(['jobs', j.job_id])}>{j.name}</a>
                  </td>
                  <td>
                    <Badge value={j.state} />
                  </td>
                  <td class="clip">{j.reason ?? ''}</td>
                  <td>
                    {j.resources.cpu} cpu{j.resources.gpu ? `, ${j.resources.gpu} gpu` : ''}
                  </td>
                  <td>
                    <Labels labels={j.labels} />
                  </td>
                  <td class="num">{j.failure_count}</td>
                  <td>{fmtTime(j.submitted_at)}</td>
                  <td>{fmtTime(j.finished_at)}</td>
                </tr>
              ))}
              {jobs.length === 0 && (
                <tr>
                  <td colSpan={8} class="muted">
                    No jobs match.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
          <Pager
            cursor={cursor}
            nextCursor={page.data.next_cursor}
            back={back}
            count={jobs.length}
            go={(c, b) => navigate(['jobs'], { ...filters, cursor: c, back: backTo(b) })}
          />
        </>
      )}
    </section>
  );
}

function JobDetail({ id }: { id: string }) {
  const { api } = useSession();
  const job = useLoad(
    (signal) => api.get<Job>(`/jobs/${encodeURIComponent(id)}`, undefined, signal),
    [api, id],
    {
      pollMs: 2000,
    },
  );
  const j = job.data;
  return (
    <section data-view="job" data-view-ready={j ? 'job' : undefined}>
      <p>
        <a href={href(['jobs'])}>← Jobs</a>
      </p>
      <LoadState state={job} what="Job" />
      {j && (
        <>
          <h2>
            {j.name} <Badge value={j.state} />
          </h2>
          <div class="actions">
            <Action
              label="Terminate"
              title={`Terminate job ${j.name}?`}
              danger
              disabled={FINAL.has(j.state)}
              onConfirm={() => {
                const reason = (document.getElementById('terminate-reason') as HTMLInputElement | null)
                  ?.value;
                return api.post(`/jobs/${encodeURIComponent(j.job_id)}/terminate`, reason ? { reason } : {});
              }}
              onDone={job.reload}
            >
              <p>Its attempt is stopped and its child jobs are terminated with it.</p>
              <label>
                Reason (optional)
                <input id="terminate-reason" maxLength={1024} />
              </label>
            </Action>
          </div>
          <KeyValues
            rows={[
              ['Job id', <code key="id">{j.job_id}</code>],
              ['Command', <code key="cmd">{j.command.join(' ')}</code>],
              ['Reason', j.reason ?? '—'],
              [
                'Resources',
                `${j.resources.cpu} cpu, ${fmtMb(j.resources.memory_mb)}, ${j.resources.gpu} gpu${
                  j.resources.device_type ? ` (${j.resources.device_type})` : ''
                }`,
              ],
              ['Labels', <Labels key="l" labels={j.labels} />],
              [
                'Parent',
                j.parent_job_id ? <a href={href(['jobs', j.parent_job_id])}>{j.parent_job_id}</a> : '—',
              ],
              ['Run', j.run_id ? <a href={href(['runs', j.run_id])}>{j.run_id}</a> : '—'],
              ['Failures / preemptions', `${j.failure_count} / ${j.preemption_count}`],
              ['Submitted', fmtTime(j.submitted_at)],
              ['Started', fmtTime(j.started_at)],
              ['Finished', fmtTime(j.finished_at)],
            ]}
          />
          <h3>Attempts</h3>
          <table class="table" data-testid="attempts">
            <thead>
              <tr>
                <th>#</th>
                <th>State</th>
                <th>Worker</th>
                <th>Exit</th>
                <th>Reason</th>
                <th>Assigned</th>
                <th>Started</th>
                <th>Finished</th>
              </tr>
            </thead>
            <tbody>
              {(j.attempts ?? []).map((a) => (
                <tr key={a.attempt_id}>
                  <td>{a.attempt_no}</td>
                  <td>
                    <Badge value={a.state} />
                  </td>
                  <td>
                    <a href={href(['workers'], { worker: a.worker_id })}>{a.worker_id}</a>
                  </td>
                  <td>{a.exit_code ?? '—'}</td>
                  <td class="clip">{a.reason ?? ''}</td>
                  <td>{fmtTime(a.assigned_at)}</td>
                  <td>{fmtTime(a.started_at)}</td>
                  <td>{fmtTime(a.finished_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <LogTail job={j} />
        </>
      )}
    </section>
  );
}

/** The last lines of the latest attempt's output, refreshed every second while the job is live. */
function LogTail({ job }: { job: Job }) {
  const { api } = useSession();
  const [stream, setStream] = useState<'all' | 'stdout' | 'stderr'>('all');
  const live = !FINAL.has(job.state);
  const logs = useLoad(
    (signal) =>
      api.get<{ lines: LogLine[] }>(
        `/jobs/${encodeURIComponent(job.job_id)}/logs`,
        { tail: 500, stream },
        signal,
      ),
    [api, job.job_id, stream, job.current_attempt_id, live],
    live ? { pollMs: 1000 } : {},
  );
  const pre = useRef<HTMLPreElement>(null);
  const lines = logs.data?.lines ?? [];
  useEffect(() => {
    const el = pre.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lines.length]);
  return (
    <>
      <h3>
        Log tail{' '}
        <select
          value={stream}
          onChange={(e) => setStream((e.target as HTMLSelectElement).value as typeof stream)}
        >
          <option value="all">all</option>
          <option value="stdout">stdout</option>
          <option value="stderr">stderr</option>
        </select>{' '}
        {live && <span class="muted">live</span>}
      </h3>
      <ErrorBox error={logs.error} />
      <pre class="log" ref={pre} data-testid="log-tail">
        {lines.length === 0
          ? 'no output yet'
          : lines.map((l, i) => (
              <span key={i} class={l.stream === 'stderr' ? 'stderr' : ''}>
                {l.line}
                {'\n'}
              </span>
            ))}
      </pre>
    </>
  );
}
