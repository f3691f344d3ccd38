import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { RunplaneClient } from '../client/client.js';
import type { Analysis, AnalysisTrial } from '../sweeps/analysis/analyze.js';
import { historyPlot, importancePlot, parallelCoordinatesPlot } from '../sweeps/analysis/plots.js';
import { mannWhitneyU } from '../sweeps/analysis/stats.js';
import type { SweepSpec } from '../sweeps/model.js';
import type { AnalysisWire, SweepWire, TrialWire } from '../sweeps/schemas.js';
import { parseSweepText } from '../sweeps/sweep-file.js';
import { trialsCsv } from '../sweeps/views.js';
import { CliError, clientFrom, EXIT, type GlobalOptions, number } from './context.js';
import { pollUntil, printJson, printTable, printView, table } from './output.js';

const FINAL = new Set(['completed', 'stopped', 'failed']);

function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined) return '-';
  return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3)
    ? v.toExponential(3)
    : String(Number(v.toPrecision(5)));
}

function paramsText(p: Record<string, unknown>): string {
  return Object.entries(p)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : String(v)}`)
    .join(' ');
}

/** One line of progress: a bar of finished trials, then done / running / failed and the best so far. */
export function progressLine(s: SweepWire, width = 30): string {
  const c = s.counts;
  const done = (c.COMPLETED ?? 0) + (c.PRUNED ?? 0);
  const failed = c.FAILED ?? 0;
  const running =
    (c.IN_TRAINING ?? 0) +
    (c.IN_EVAL ?? 0) +
    (c.TRAINING_DONE_NO_EVAL ?? 0) +
    (c.EVAL_DONE_NOT_COMPLETED ?? 0);
  const pending = c.PENDING ?? 0;
  const total = s.max_trials ?? Math.max(s.trial_count, 1);
  const filled = Math.min(width, Math.round(((done + failed) / Math.max(1, total)) * width));
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const metric = s.objectives[0]?.metric ?? 'objective';
  const best = s.best ? `best ${metric}=${fmt(s.best.value)} (trial ${s.best.number})` : 'best -';
  return `${bar} ${done + failed}/${s.max_trials ?? '?'} done ${done}, running ${running}, pending ${pending}, failed ${failed}, ${best}  [${s.status}]`;
}

/** Polls the sweep every second, drawing its progress line on stderr, until it is final. */
async function follow(client: RunplaneClient, id: string, json: boolean): Promise<SweepWire> {
  const tty = process.stderr.isTTY === true;
  let last = '';
  const final = await pollUntil(
    () => client.getSweep(id),
    (s) => FINAL.has(s.status),
    {
      delayMs: 1000,
      onRead: (s) => {
        const line = progressLine(s);
        if (json || line === last) return;
        process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
        last = line;
      },
    },
  );
  if (!json && tty) process.stderr.write('\n');
  return final;
}

function readSweepFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`, EXIT.usage);
  }
  const parsed = parseSweepText(text);
  if (!parsed.ok)
    throw new CliError(`${path}: ${parsed.errors.map((e) => e.message).join('; ')}`, EXIT.invalid);
  if (typeof parsed.raw !== 'object' || parsed.raw === null || Array.isArray(parsed.raw)) {
    throw new CliError(`${path}: a sweep file is a mapping (name, objective, parameters, ...)`, EXIT.invalid);
  }
  const file = parsed.raw as Record<string, unknown>;
  // Jobs run wherever their worker is: a relative cwd means "from here", so it is made absolute.
  for (const key of ['train', 'eval']) {
    const task = file[key];
    if (typeof task === 'object' && task !== null && typeof (task as { cwd?: unknown }).cwd === 'string') {
      (task as { cwd: string }).cwd = resolve((task as { cwd: string }).cwd);
    }
  }
  if (typeof file.checkpoint_dir === 'string') file.checkpoint_dir = resolve(file.checkpoint_dir);
  return file;
}

function summary(s: SweepWire): string {
  const lines = [
    `sweep        ${s.sweep_id}  (${s.name})`,
    `status       ${s.status}${s.status_reason ? `  (${s.status_reason})` : ''}`,
    `objective    ${s.objectives.map((o) => `${o.direction} ${o.metric}`).join(', ')}`,
    `search       optimizer ${s.optimizer}, scheduler ${s.scheduler}, dispatcher ${s.dispatcher}`,
    `trials       ${s.trial_count}${s.max_trials ? ` of ${s.max_trials}` : ''}, ${s.max_parallel_jobs} in parallel`,
    `counts       ${
      Object.entries(s.counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || '-'
    }`,
    `best         ${s.best ? `trial ${s.best.number}: ${fmt(s.best.value)}  ${paramsText(s.best.params)}` : '-'}`,
  ];
  if (s.last_error) lines.push(`last error   ${s.last_error}`);
  return lines.join('\n');
}

function trialTable(spec: SweepSpec | null, trials: readonly TrialWire[]): string {
  const params = spec ? Object.keys(spec.parameters) : [];
  const metrics = spec ? spec.objectives.map((o) => o.metric) : ['value'];
  return table(
    ['#', 'status', ...params, ...metrics, 'attempt', 'run'],
    trials.map((t) => [
      t.number,
      t.status,
      ...params.map((p) =>
        typeof t.params[p] === 'number' ? fmt(t.params[p] as number) : (t.params[p] as string | undefined),
      ),
      ...metrics.map((_, i) => fmt(t.values?.[i])),
      t.attempt,
      t.run_id,
    ]),
  );
}

function analysisText(a: AnalysisWire, params: string[]): string {
  const out: string[] = [];
  const metric = a.objectives.map((o) => o.metric);
  out.push(
    `trials: ${a.trials.total} (completed ${a.trials.completed}, pruned ${a.trials.pruned}, failed ${a.trials.failed})`,
  );
  out.push(
    a.best
      ? `best: trial ${a.best.number}  ${metric.map((m, i) => `${m}=${fmt(a.best?.values[i])}`).join(' ')}  ${paramsText(a.best.params)}`
      : 'best: -',
  );
  if (a.top.length > 0) {
    out.push('', `top ${a.top.length}:`);
    out.push(
      table(
        ['#', ...metric, ...params],
        a.top.map((t) => [
          t.number,
          ...t.values.map(fmt),
          ...params.map((p) =>
            typeof t.params[p] === 'number'
              ? fmt(t.params[p] as number)
              : (t.params[p] as string | undefined),
          ),
        ]),
      ),
    );
  }
  out.push('', `importance (${a.importance_method}):`);
  out.push(
    table(
      ['param', 'importance'],
      a.importance.map((i) => [i.param, fmt(i.importance)]),
    ),
  );
  if (a.pareto_front.length > 0)
    out.push('', `pareto front: trials ${a.pareto_front.join(', ')}  (hypervolume ${fmt(a.hypervolume)})`);
  if (a.cost_front.length > 0) out.push(`score vs cost front: trials ${a.cost_front.join(', ')}`);
  if (a.significance) {
    const s = a.significance;
    out.push(
      '',
      `significance: trial ${s.a} vs trial ${s.b}: ${s.test} statistic ${fmt(s.statistic)}, p=${fmt(s.p_value)} (n=${s.n_a}, ${s.n_b}) → ${s.significant ? 'significant' : 'not significant'}`,
      `  ${s.note}`,
    );
  }
  return out.join('\n');
}

export function registerSweep(program: Command, globals: () => GlobalOptions): void {
  const sweep = program
    .command('sweep')
    .description('hyperparameter sweeps: start, follow, stop, resume, analyze, export, compare');

  sweep
    .command('start <file>')
    .description('start a sweep from a YAML or JSON sweep file and follow its progress')
    .option('--detach', 'print the sweep id and return at once')
    .option('--json', 'print the final sweep as JSON')
    .action(async (file: string, o: { detach?: boolean; json?: boolean }) => {
      const client = clientFrom(globals());
      const created = await client.createSweep(readSweepFile(file));
      if (o.detach) {
        printView(created, o.json, (c) => c.sweep_id);
        return;
      }
      process.stderr.write(
        `sweep ${created.sweep_id} started (${created.name}); Ctrl-C stops following, not the sweep\n`,
      );
      const final = await follow(client, created.sweep_id, o.json === true);
      printView(final, o.json, summary);
      if (final.status !== 'completed') process.exitCode = EXIT.failed;
    });

  sweep
    .command('status <sweep_id>')
    .description('a sweep, its counts, best trial and trials')
    .option('--json', 'print JSON')
    .option('--follow', 'follow the progress bar until the sweep ends')
    .action(async (id: string, o: { json?: boolean; follow?: boolean }) => {
      const client = clientFrom(globals());
      const s = o.follow ? await follow(client, id, o.json === true) : await client.getSweep(id);
      const trials = (await client.sweepTrials(id)).trials;
      if (o.json) {
        printJson({ ...s, trials });
        return;
      }
      process.stdout.write(
        `${summary(s)}\n${progressLine(s)}\n\n${trialTable(s.spec as unknown as SweepSpec, trials)}\n`,
      );
    });

  sweep
    .command('list')
    .description('list sweeps, newest first')
    .option('--status <status>', 'only sweeps in this status')
    .option('--json', 'print JSON')
    .action(async (o: { status?: string; json?: boolean }) => {
      const client = clientFrom(globals());
      const page = await client.listSweeps({
        ...(o.status ? { status: o.status as SweepWire['status'] } : {}),
      });
      if (o.json) {
        printJson(page);
        return;
      }
      printTable(
        ['sweep', 'name', 'status', 'trials', 'best', 'optimizer', 'scheduler'],
        page.sweeps.map((s) => [
          s.sweep_id,
          s.name,
          s.status,
          s.trial_count,
          fmt(s.best?.value),
          s.optimizer,
          s.scheduler,
        ]),
      );
    });

  sweep
    .command('stop <sweep_id>')
    .description('stop a sweep: no new trials, running trials are terminated')
    .option('--reason <text>', 'why (kept with the sweep)')
    .action(async (id: string, o: { reason?: string }) => {
      const s = await clientFrom(globals()).stopSweep(id, o.reason);
      process.stdout.write(`${s.sweep_id} ${s.status}\n`);
    });

  sweep
    .command('resume <sweep_id>')
    .description('resume a stopped sweep: interrupted trials run again, then new ones up to max_trials')
    .action(async (id: string) => {
      const s = await clientFrom(globals()).resumeSweep(id);
      process.stdout.write(`${s.sweep_id} ${s.status}\n`);
    });

  sweep
    .command('analyze <sweep_id>')
    .description('best configuration, top-k, importance, Pareto front, significance; plots as SVG')
    .option('--top <k>', 'rows of the top-k table (default 10)', number('--top'))
    .option('--out <dir>', 'where the SVG plots go (default ./sweep-<id>-analysis)')
    .option('--no-plots', 'no SVG files')
    .option('--json', 'print the analysis as JSON')
    .action(async (id: string, o: { top?: number; out?: string; plots?: boolean; json?: boolean }) => {
      const client = clientFrom(globals());
      const [s, a, trials] = await Promise.all([
        client.getSweep(id),
        client.sweepAnalysis(id, o.top),
        client.sweepTrials(id).then((r) => r.trials),
      ]);
      const spec = s.spec as unknown as SweepSpec;
      const written: string[] = [];
      if (o.plots !== false) {
        const dir = resolve(o.out ?? `sweep-${id}-analysis`);
        mkdirSync(dir, { recursive: true });
        const at = trials as unknown as AnalysisTrial[];
        const an = a as unknown as Analysis;
        const files: Array<[string, string]> = [
          ['history.svg', historyPlot(an, s.name)],
          ['parallel_coordinates.svg', parallelCoordinatesPlot(spec.parameters, at, an, s.name)],
          ['importance.svg', importancePlot(an, s.name)],
        ];
        for (const [name, svg] of files) {
          writeFileSync(join(dir, name), svg);
          written.push(join(dir, name));
        }
      }
      if (o.json) {
        printJson({ ...a, plots: written });
        return;
      }
      process.stdout.write(`${analysisText(a, Object.keys(spec.parameters))}\n`);
      if (written.length > 0) process.stdout.write(`\nplots:\n${written.map((w) => `  ${w}`).join('\n')}\n`);
    });

  sweep
    .command('export <sweep_id>')
    .description('the trials as CSV or JSON')
    .option('--format <format>', 'csv or json (default csv)', 'csv')
    .option('--out <file>', 'write to a file instead of stdout')
    .action(async (id: string, o: { format: string; out?: string }) => {
      if (o.format !== 'csv' && o.format !== 'json')
        throw new CliError('--format must be csv or json', EXIT.usage);
      const client = clientFrom(globals());
      const [s, trials] = await Promise.all([
        client.getSweep(id),
        client.sweepTrials(id).then((r) => r.trials),
      ]);
      const text =
        o.format === 'csv'
          ? trialsCsv(s.spec as unknown as SweepSpec, trials)
          : `${JSON.stringify({ sweep: s, trials }, null, 2)}\n`;
      if (o.out) writeFileSync(o.out, text);
      else process.stdout.write(text);
    });

  sweep
    .command('compare <a> <b>')
    .description('two sweeps side by side, and whether their completed trials differ (Mann-Whitney U)')
    .option('--json', 'print JSON')
    .action(async (ida: string, idb: string, o: { json?: boolean }) => {
      const client = clientFrom(globals());
      const [a, b, ta, tb] = await Promise.all([
        client.getSweep(ida),
        client.getSweep(idb),
        client.sweepTrials(ida).then((r) => r.trials),
        client.sweepTrials(idb).then((r) => r.trials),
      ]);
      const values = (ts: TrialWire[]) =>
        ts
          .filter((t) => t.status === 'COMPLETED' && t.values?.[0] !== undefined)
          .map((t) => t.values?.[0] as number);
      const va = values(ta);
      const vb = values(tb);
      const median = (xs: number[]) => {
        const s = [...xs].sort((x, y) => x - y);
        return s.length === 0
          ? null
          : ((s[Math.floor((s.length - 1) / 2)] ?? 0) + (s[Math.ceil((s.length - 1) / 2)] ?? 0)) / 2;
      };
      const test = mannWhitneyU(va, vb);
      const result = {
        a: {
          sweep_id: a.sweep_id,
          name: a.name,
          status: a.status,
          trials: a.trial_count,
          completed: va.length,
          best: a.best,
          median: median(va),
        },
        b: {
          sweep_id: b.sweep_id,
          name: b.name,
          status: b.status,
          trials: b.trial_count,
          completed: vb.length,
          best: b.best,
          median: median(vb),
        },
        metric: a.objectives[0]?.metric ?? null,
        same_metric: a.objectives[0]?.metric === b.objectives[0]?.metric,
        mann_whitney: test,
      };
      if (o.json) {
        printJson(result);
        return;
      }
      const row = (label: string, f: (x: typeof result.a) => string | number | null) => [
        label,
        f(result.a),
        f(result.b),
      ];
      printTable(
        ['', a.sweep_id, b.sweep_id],
        [
          row('name', (x) => x.name),
          row('status', (x) => x.status),
          row('trials', (x) => x.trials),
          row('completed', (x) => x.completed),
          row(`best ${result.metric ?? ''}`, (x) => fmt(x.best?.value)),
          row('best params', (x) => (x.best ? paramsText(x.best.params) : '-')),
          row(`median ${result.metric ?? ''}`, (x) => fmt(x.median)),
        ],
      );
      if (!result.same_metric) process.stdout.write('note: the sweeps optimise different metrics\n');
      if (test)
        process.stdout.write(
          `Mann-Whitney U=${fmt(test.u)}, p=${fmt(test.p)}: ${test.p < 0.05 ? 'the sweeps differ' : 'no significant difference'}\n`,
        );
    });
}
