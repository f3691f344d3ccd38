import { useEffect, useRef, useState } from 'preact/hooks';
import type { Attempt, Job, LogLine } from '../api-types.js';
import { ConfirmAction, formText } from '../components/confirm.js';
import { type Column, DataTable } from '../components/data-table.js';
import { Detail } from '../components/detail.js';
import { Filters, PER_PAGE } from '../components/filters.js';
import { FIRST_PAGE, Pager, pageAt } from '../components/pager.js';
import { StateBadge, statesOf } from '../components/state-badge.js';
import { fmtMb, fmtTime } from '../format.js';
import { href, navigate, type Route } from '../router.js';
import { useSession } from '../session.js';
import { ErrorBox, KeyValues, Labels, LoadState, useLoad } from '../ui.js';

/**
 * Jobs: a filterable, paginated table (server-side: state, label and parent filters, cursor
 * pagination, so 100,000 jobs cost one page), and a job's detail with its attempts, a live log
 * tail and terminate.
 */

const FINAL = new Set(['SUCCEEDED', 'FAILED', 'KILLED', 'WORKER_FAILED', 'UNSCHEDULABLE']);

const JOB_COLUMNS: Column<Job>[] = [
  { head: 'Name', cell: (j) => <a href={href(['jobs', j.job_id])}>{j.name}</a> },
  { head: 'State', cell: (j) => <StateBadge kind="job" value={j.state} /> },
  { head: 'Reason', class: 'clip', cell: (j) => j.reason ?? '' },
  {
    head: 'Resources',
    cell: (j) => `${j.resources.cpu} cpu${j.resources.gpu ? `, ${j.resources.gpu} gpu` : ''}`,
  },
  { head: 'Labels', cell: (j) => <Labels labels={j.labels} /> },
  { head: 'Failures', num: true, cell: (j) => j.failure_count },
  { head: 'Submitted', cell: (j) => fmtTime(j.submitted_at) },
  { head: 'Finished', cell: (j) => fmtTime(j.finished_at) },
];

const ATTEMPT_COLUMNS: Column<Attempt>[] = [
  { head: '#', cell: (a) => a.attempt_no },
  { head: 'State', cell: (a) => <StateBadge kind="job" value={a.state} /> },
  {
    head: 'Worker',
    cell: (a) => <a href={href(['workers'], { worker: a.worker_id })}>{a.worker_id}</a>,
  },
  { head: 'Exit', cell: (a) => a.exit_code ?? '—' },
  { head: 'Reason', class: 'clip', cell: (a) => a.reason ?? '' },
  { head: 'Assigned', cell: (a) => fmtTime(a.assigned_at) },
  { head: 'Started', cell: (a) => fmtTime(a.started_at) },
  { head: 'Finished', cell: (a) => fmtTime(a.finished_at) },
];

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
  const at = pageAt(query);
  const page = useLoad(
    (signal) =>
      api.get<{ jobs: Job[]; next_cursor: string | null }>(
        '/jobs',
        { ...filters, label: filters.label || undefined, cursor: at.cursor },
        signal,
      ),
    [api, query.toString()],
    { pollMs: 5000 },
  );
  const jobs = page.data?.jobs ?? [];
  return (
    <section data-view="jobs" data-view-ready={page.data ? 'jobs' : undefined}>
      <h2>Jobs</h2>
      <Filters
        fields={[
          { type: 'select', name: 'state', label: 'State', options: statesOf('job'), any: true },
          { type: 'text', name: 'label', label: 'Label', placeholder: 'key=value' },
          { type: 'text', name: 'parent', label: 'Parent', placeholder: 'job id' },
          PER_PAGE,
        ]}
        values={filters}
        onChange={(patch) => navigate(['jobs'], { ...filters, ...FIRST_PAGE, ...patch })}
      />
      <LoadState state={page} what="Jobs" />
      {page.data && (
        <>
          <DataTable
            testid="jobs-table"
            columns={JOB_COLUMNS}
            rows={jobs}
            rowKey={(j) => j.job_id}
            row={(j) => ({ 'data-job-id': j.job_id })}
            empty="No jobs match."
          />
          <Pager at={at} next={page.data.next_cursor} count={jobs.length} route={['jobs']} query={filters} />
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
    { pollMs: 2000 },
  );
  return (
    <Detail view="job" back={['jobs']} backLabel="Jobs" state={job} what="Job">
      {(j) => (
        <>
          <h2>
            {j.name} <StateBadge kind="job" value={j.state} />
          </h2>
          <div class="actions">
            <ConfirmAction
              label="Terminate"
              title={`Terminate job ${j.name}?`}
              danger
              disabled={FINAL.has(j.state)}
              onConfirm={(form) => {
                const reason = formText(form, 'reason');
                return api.post(`/jobs/${encodeURIComponent(j.job_id)}/terminate`, reason ? { reason } : {});
              }}
              onDone={job.reload}
            >
              <p>Its attempt is stopped and its child jobs are terminated with it.</p>
              <label>
                Reason (optional)
                <input id="terminate-reason" name="reason" maxLength={1024} />
              </label>
            </ConfirmAction>
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
          <DataTable
            testid="attempts"
            columns={ATTEMPT_COLUMNS}
            rows={j.attempts ?? []}
            rowKey={(a) => a.attempt_id}
          />
          <LogTail job={j} />
        </>
      )}
    </Detail>
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
