import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { JobRequest, JobView } from '../jobs/schemas.js';
import { CliError, clientFrom, collect, EXIT, type GlobalOptions, keyValues, number } from './context.js';
import {
  type ListingOptions,
  listingOptions,
  pollUntil,
  printJson,
  printListing,
  printView,
  since,
  table,
} from './output.js';

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'KILLED', 'WORKER_FAILED', 'UNSCHEDULABLE']);

interface SubmitOptions {
  file?: string;
  name?: string;
  env?: string[];
  cwd?: string;
  cpu?: number;
  memoryMb?: number;
  gpu?: number;
  deviceType?: string;
  label?: string[];
  setup?: string;
  maxRetriesFailure?: number;
  maxRetriesPreemption?: number;
  schedulingTimeout?: number;
  parent?: string;
  gangId?: string;
  gangSize?: number;
  runId?: string;
  wait?: boolean;
  json?: boolean;
}

/** `job list`: its filters, then paging and output. */
type ListJobsOptions = { state?: string; label?: string[]; parent?: string } & ListingOptions;

/** Exit code of a finished job for `--wait`: 0 only when it SUCCEEDED. */
const jobExit = (job: JobView) => (job.state === 'SUCCEEDED' ? EXIT.ok : EXIT.failed);

function waitForEnd(opts: GlobalOptions, id: string): Promise<JobView> {
  const client = clientFrom(opts);
  return pollUntil(
    () => client.getJob(id),
    (job) => TERMINAL.has(job.state),
    { delayMs: 100, maxDelayMs: 2000 },
  );
}

/** Log lines to the stream they were captured from. */
function writeLogLines(lines: ReadonlyArray<{ stream: string; line: string }>): void {
  for (const l of lines) (l.stream === 'stderr' ? process.stderr : process.stdout).write(`${l.line}\n`);
}

function describe(job: JobView): string {
  const lines = [
    `job        ${job.job_id}`,
    `name       ${job.name}`,
    `state      ${job.state}${job.reason ? `  (${job.reason})` : ''}`,
    `command    ${JSON.stringify(job.command)}`,
    `resources  cpu=${job.resources.cpu} memory_mb=${job.resources.memory_mb} gpu=${job.resources.gpu}${job.resources.device_type ? ` device_type=${job.resources.device_type}` : ''}`,
    `retries    failures ${job.failure_count}/${job.max_retries_failure}, preemptions ${job.preemption_count}/${job.max_retries_preemption}`,
    `submitted  ${job.submitted_at}`,
  ];
  if (job.parent_job_id) lines.push(`parent     ${job.parent_job_id}`);
  if (job.gang) lines.push(`gang       ${job.gang.id} (size ${job.gang.size})`);
  if (job.run_id) lines.push(`run        ${job.run_id}`);
  if (job.attempts && job.attempts.length > 0) {
    lines.push(
      '',
      table(
        ['ATTEMPT', 'WORKER', 'STATE', 'EXIT', 'STARTED', 'FINISHED', 'REASON'],
        job.attempts.map((a) => [
          a.attempt_no,
          a.worker_id,
          a.state,
          a.exit_code,
          a.started_at,
          a.finished_at,
          a.reason,
        ]),
      ),
    );
  }
  return lines.join('\n');
}

export function registerJob(program: Command, globals: () => GlobalOptions): void {
  const job = program.command('job').description('submit, inspect and stop jobs');

  job
    .command('submit')
    .description('submit a job: runplane job submit [options] -- <command> [args...]')
    .argument('[command...]', 'the argv to run (no shell)')
    .option('-f, --file <file>', 'read the job request (JSON) from a file')
    .option('--name <name>', 'job name, unique under its parent')
    .option('-e, --env <k=v>', 'environment variable (repeatable)', collect)
    .option('--cwd <dir>', 'working directory on the worker')
    .option('--cpu <n>', 'cpus (default 1)', number('--cpu'))
    .option('--memory-mb <n>', 'memory in MiB', number('--memory-mb'))
    .option('--gpu <n>', 'gpus', number('--gpu'))
    .option('--device-type <type>', 'accelerator kind required')
    .option('-l, --label <k=v>', 'label (repeatable)', collect)
    .option('--setup <argv-json>', 'setup command run while BUILDING, as a JSON array')
    .option(
      '--max-retries-failure <n>',
      'retries after a failed attempt (default 0)',
      number('--max-retries-failure'),
    )
    .option(
      '--max-retries-preemption <n>',
      'retries after a lost worker (default 100)',
      number('--max-retries-preemption'),
    )
    .option(
      '--scheduling-timeout <s>',
      'seconds pending before UNSCHEDULABLE (default 0 = wait)',
      number('--scheduling-timeout'),
    )
    .option('--parent <job_id>', 'parent job')
    .option('--gang-id <id>', 'gang id: members are placed together')
    .option('--gang-size <n>', 'gang size', number('--gang-size'))
    .option('--run-id <run_id>', 'link the job to a run')
    .option('-w, --wait', 'wait until the job ends; exit 0 only if it SUCCEEDED')
    .option('--json', 'print JSON')
    .action(async (command: string[], o: SubmitOptions) => {
      let req: Partial<JobRequest> = {};
      if (o.file) req = JSON.parse(readFileSync(o.file, 'utf8')) as JobRequest;
      if (command.length > 0) req.command = command;
      if (!req.command) throw new CliError('give a command after -- or a --file', EXIT.usage);
      if (o.name) req.name = o.name;
      if (o.env) req.env = { ...req.env, ...keyValues(o.env, '--env') };
      if (o.cwd) req.cwd = o.cwd;
      if (
        o.cpu !== undefined ||
        o.memoryMb !== undefined ||
        o.gpu !== undefined ||
        o.deviceType !== undefined
      ) {
        req.resources = {
          ...req.resources,
          ...(o.cpu !== undefined ? { cpu: o.cpu } : {}),
          ...(o.memoryMb !== undefined ? { memory_mb: o.memoryMb } : {}),
          ...(o.gpu !== undefined ? { gpu: o.gpu } : {}),
          ...(o.deviceType !== undefined ? { device_type: o.deviceType } : {}),
        };
      }
      if (o.label) req.labels = { ...req.labels, ...keyValues(o.label, '--label') };
      if (o.setup) {
        try {
          req.setup = JSON.parse(o.setup) as string[];
        } catch {
          throw new CliError(
            '--setup must be a JSON array, e.g. \'["pip","install","-r","req.txt"]\'',
            EXIT.usage,
          );
        }
      }
      if (o.maxRetriesFailure !== undefined) req.max_retries_failure = o.maxRetriesFailure;
      if (o.maxRetriesPreemption !== undefined) req.max_retries_preemption = o.maxRetriesPreemption;
      if (o.schedulingTimeout !== undefined) req.scheduling_timeout_s = o.schedulingTimeout;
      if (o.parent) req.parent_job_id = o.parent;
      if (o.gangId || o.gangSize !== undefined) req.gang = { id: o.gangId ?? '', size: o.gangSize ?? 1 };
      if (o.runId) req.run_id = o.runId;
      const { job_id } = await clientFrom(globals()).launchJob(req as JobRequest);
      if (!o.wait) {
        printView({ job_id }, o.json, (r) => r.job_id);
        return;
      }
      const done = await waitForEnd(globals(), job_id);
      printView(done, o.json, (j) => `${job_id} ${j.state}${j.reason ? ` (${j.reason})` : ''}`);
      process.exitCode = jobExit(done);
    });

  job
    .command('status')
    .description('show a job, its state and its attempts')
    .argument('<job_id>')
    .option('-w, --wait', 'wait until the job ends; exit 0 only if it SUCCEEDED')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { wait?: boolean; json?: boolean }) => {
      const view = o.wait ? await waitForEnd(globals(), id) : await clientFrom(globals()).getJob(id);
      printView(view, o.json, describe);
      if (o.wait) process.exitCode = jobExit(view);
    });

  listingOptions(
    job
      .command('list')
      .description('list jobs (oldest first)')
      .option('--state <state>', 'only jobs in this state')
      .option('-l, --label <k=v>', 'only jobs with this label (repeatable)', collect)
      .option('--parent <job_id>', 'only children of this job'),
  ).action(async (o: ListJobsOptions) => {
    const client = clientFrom(globals());
    await printListing(
      'jobs',
      o,
      (cursor) =>
        client.listJobs({
          ...(o.state ? { state: o.state as JobView['state'] } : {}),
          ...(o.label ? { label: o.label } : {}),
          ...(o.parent ? { parent: o.parent } : {}),
          ...(o.limit ? { limit: o.limit } : {}),
          ...(cursor ? { cursor } : {}),
        }),
      ['JOB', 'NAME', 'STATE', 'ATTEMPTS', 'SUBMITTED', 'REASON'],
      (j) => [
        j.job_id,
        j.name,
        j.state,
        j.attempts?.length ?? (j.current_attempt_id ? j.current_attempt_id.split('-').pop() : 0),
        since(j.submitted_at),
        j.reason,
      ],
    );
  });

  job
    .command('kill')
    .description('terminate a job and its child jobs')
    .argument('<job_id>')
    .option('--reason <text>', 'why')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { reason?: string; json?: boolean }) => {
      const view = await clientFrom(globals()).terminateJob(id, o.reason);
      printView(view, o.json, (v) => `${v.job_id} ${v.state}`);
    });

  job
    .command('logs')
    .description("print a job's output (latest attempt by default)")
    .argument('<job_id>')
    .option('--attempt <n>', 'attempt number', number('--attempt'))
    .option('--tail <n>', 'last n lines', number('--tail'))
    .option('--stream <stream>', 'stdout, stderr or all', 'all')
    .option('-f, --follow', 'keep printing new output until the job ends')
    .option('--json', 'print JSON')
    .action(
      async (
        id: string,
        o: { attempt?: number; tail?: number; stream: string; follow?: boolean; json?: boolean },
      ) => {
        const client = clientFrom(globals());
        const q = {
          ...(o.attempt ? { attempt: o.attempt } : {}),
          stream: o.stream as 'stdout' | 'stderr' | 'all',
        };
        if (!o.follow) {
          const logs = await client.jobLogs(id, { ...q, ...(o.tail ? { tail: o.tail } : {}) });
          if (o.json) return printJson(logs);
          writeLogLines(logs.lines);
          return;
        }
        let printed = 0;
        let attempt: string | null = null;
        await pollUntil(
          () => Promise.all([client.jobLogs(id, q), client.getJob(id)]),
          ([, view]) => TERMINAL.has(view.state),
          {
            delayMs: 500,
            onRead: ([logs]) => {
              if (logs.attempt_id !== attempt) {
                attempt = logs.attempt_id;
                printed = o.tail ? Math.max(0, logs.lines.length - o.tail) : 0;
              }
              writeLogLines(logs.lines.slice(printed));
              printed = logs.lines.length;
            },
          },
        );
      },
    );
}
