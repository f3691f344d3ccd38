/**
 * Reads the Prometheus text exposition of `GET /metrics`: the overview's counts by state come
 * from the gauges the controller computes from the store at scrape time (runplane_jobs{state},
 * runplane_runs{status,health}, runplane_workers{health}), so the dashboard never lists
 * 100,000 jobs to count them. Pure: no DOM, no I/O.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescapeLabel(v: string): string {
  return v.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

function number(v: string): number {
  if (v === '+Inf') return Number.POSITIVE_INFINITY;
  if (v === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(v);
}

export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = unescapeLabel(l[2]!);
    out.push({ name: m[1]!, labels, value: number(m[3]!) });
  }
  return out;
}

/** Sum of a metric's samples grouped by one label (e.g. runplane_jobs by state). */
export function sumBy(samples: readonly Sample[], name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) {
    if (s.name !== name) continue;
    const key = s.labels[label] ?? '';
    out[key] = (out[key] ?? 0) + s.value;
  }
  return out;
}

/** The value of an unlabelled metric (e.g. a counter), or null when it is absent. */
export function metricValue(samples: readonly Sample[], name: string): number | null {
  let total: number | null = null;
  for (const s of samples) if (s.name === name) total = (total ?? 0) + s.value;
  return total;
}
