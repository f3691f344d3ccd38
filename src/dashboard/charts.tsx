import { useEffect, useRef, useState } from 'preact/hooks';
import { fmtNum } from './format.js';
import type { ChartHandle, LineChartSpec } from './line-chart.js';

/**
 * Charts: time series and per-step curves with uPlot (loaded on first use), and the sweep and
 * pod plots uPlot has no form for (parallel coordinates, bars, scatter with a front, intervals)
 * as plain SVG.
 */

export const PALETTE = [
  '#4ea1ff',
  '#f59e0b',
  '#34d399',
  '#f472b6',
  '#a78bfa',
  '#f87171',
  '#22d3ee',
  '#facc15',
];

export function LineChart({ title, spec, testid }: { title: string; spec: LineChartSpec; testid?: string }) {
  const el = useRef<HTMLDivElement>(null);
  const chart = useRef<ChartHandle | null>(null);
  const specRef = useRef(spec);
  specRef.current = spec;
  const [failed, setFailed] = useState<string | null>(null);

  useEffect(() => {
    let cancelled = false;
    let observer: ResizeObserver | null = null;
    import('./line-chart.js')
      .then(({ createLineChart }) => {
        if (cancelled || !el.current) return;
        chart.current = createLineChart(el.current, specRef.current);
        observer = new ResizeObserver((entries) => {
          const w = entries[0]?.contentRect.width;
          if (w) chart.current?.resize(w);
        });
        observer.observe(el.current);
      })
      .catch((err: unknown) => setFailed(String(err)));
    return () => {
      cancelled = true;
      observer?.disconnect();
      chart.current?.destroy();
      chart.current = null;
    };
  }, []);

  useEffect(() => {
    chart.current?.update(spec);
  }, [spec]);

  const empty = spec.x.length === 0;
  return (
    <figure class="chart" data-testid={testid}>
      <figcaption>{title}</figcaption>
      {failed && <div class="error">{failed}</div>}
      {empty && <p class="muted chart-empty">No points yet.</p>}
      <div ref={el} class="chart-body" />
    </figure>
  );
}

const W = 640;

/** One polyline per trial across one vertical axis per parameter; colour by objective. */
export function ParallelCoordinates({
  axes,
  rows,
  colorBy,
  lowerIsBetter,
}: {
  axes: string[];
  rows: Array<Record<string, unknown>>;
  /** The key of each row's objective value. */
  colorBy: string;
  lowerIsBetter: boolean;
}) {
  const H = 280;
  const pad = { l: 40, r: 40, t: 30, b: 30 };
  if (axes.length < 2 || rows.length === 0) return <p class="muted">Not enough trials or parameters yet.</p>;
  const scales = axes.map((a) => axisScale(rows.map((r) => r[a])));
  const xs = axes.map((_, i) => pad.l + (i * (W - pad.l - pad.r)) / (axes.length - 1));
  const objective = axisScale(rows.map((r) => r[colorBy]));
  const y = (i: number, v: unknown) => {
    const f = scales[i]!.pos(v);
    return f === null ? null : pad.t + (1 - f) * (H - pad.t - pad.b);
  };
  return (
    <svg viewBox={`0 0 ${W} ${H}`} class="plot" role="img" aria-label="parallel coordinates">
      {rows.map((r, k) => {
        const pts = axes
          .map((a, i) => {
            const yy = y(i, r[a]);
            return yy === null ? null : `${xs[i]!.toFixed(1)},${yy.toFixed(1)}`;
          })
          .filter((p): p is string => p !== null);
        const f = objective.pos(r[colorBy]);
        const good = f === null ? 0.5 : lowerIsBetter ? 1 - f : f;
        return (
          <polyline
            key={k}
            points={pts.join(' ')}
            fill="none"
            stroke={heat(good)}
            stroke-opacity={0.75}
            stroke-width={1.2}
          />
        );
      })}
      {axes.map((a, i) => (
        <g key={a}>
          <line x1={xs[i]} x2={xs[i]} y1={pad.t} y2={H - pad.b} stroke="#9aa4b2" />
          <text x={xs[i]} y={pad.t - 12} text-anchor="middle" class="axis-title">
            {a}
          </text>
          <text x={xs[i]! + 4} y={pad.t + 4} class="tick">
            {scales[i]!.top}
          </text>
          <text x={xs[i]! + 4} y={H - pad.b} class="tick">
            {scales[i]!.bottom}
          </text>
        </g>
      ))}
    </svg>
  );
}

interface AxisScale {
  pos(v: unknown): number | null;
  top: string;
  bottom: string;
}

/** Numbers map linearly onto [0, 1]; anything else by its rank among the distinct values. */
function axisScale(values: unknown[]): AxisScale {
  const nums = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (nums.length === values.filter((v) => v !== undefined && v !== null).length && nums.length > 0) {
    const lo = Math.min(...nums);
    const hi = Math.max(...nums);
    return {
      pos: (v) =>
        typeof v === 'number' && Number.isFinite(v) ? (hi === lo ? 0.5 : (v - lo) / (hi - lo)) : null,
      top: fmtNum(hi, 3),
      bottom: fmtNum(lo, 3),
    };
  }
  const cats = [...new Set(values.filter((v) => v !== undefined && v !== null).map((v) => String(v)))].sort();
  return {
    pos: (v) => {
      if (v === undefined || v === null) return null;
      const i = cats.indexOf(String(v));
      return cats.length === 1 ? 0.5 : i / (cats.length - 1);
    },
    top: cats[cats.length - 1] ?? '',
    bottom: cats[0] ?? '',
  };
}

/** 0 = bad (red) … 1 = good (green). */
function heat(f: number): string {
  const h = Math.round(Math.max(0, Math.min(1, f)) * 130);
  return `hsl(${h} 80% 55%)`;
}

/** Horizontal bars, largest first (hyperparameter importance). */
export function Bars({
  items,
  format,
}: {
  items: Array<{ label: string; value: number }>;
  format?(v: number): string;
}) {
  if (items.length === 0) return <p class="muted">Nothing to show yet.</p>;
  const sorted = [...items].sort((a, b) => b.value - a.value);
  const max = Math.max(...sorted.map((i) => i.value), 1e-12);
  const rowH = 24;
  const H = sorted.length * rowH + 10;
  const labelW = 160;
  return (
    <svg viewBox={`0 0 ${W} ${H}`} class="plot" role="img" aria-label="bars">
      {sorted.map((it, i) => (
        <g key={it.label} transform={`translate(0 ${i * rowH + 5})`}>
          <text x={labelW - 8} y={15} text-anchor="end" class="tick">
            {it.label}
          </text>
          <rect
            x={labelW}
            y={3}
            height={16}
            width={((W - labelW - 70) * Math.max(0, it.value)) / max}
            fill={PALETTE[0]}
          />
          <text x={labelW + ((W - labelW - 70) * Math.max(0, it.value)) / max + 6} y={15} class="tick">
            {format ? format(it.value) : fmtNum(it.value, 3)}
          </text>
        </g>
      ))}
    </svg>
  );
}

/** Scatter of two objectives; points on the Pareto front are highlighted and joined. */
export function FrontScatter({
  points,
  xLabel,
  yLabel,
}: {
  points: Array<{ x: number; y: number; front: boolean; label: string }>;
  xLabel: string;
  yLabel: string;
}) {
  const H = 300;
  const pad = { l: 60, r: 20, t: 14, b: 40 };
  if (points.length === 0) return <p class="muted">No completed trials with two objectives yet.</p>;
  const xsv = points.map((p) => p.x);
  const ysv = points.map((p) => p.y);
  const [x0, x1] = [Math.min(...xsv), Math.max(...xsv)];
  const [y0, y1] = [Math.min(...ysv), Math.max(...ysv)];
  const sx = (v: number) => pad.l + (x1 === x0 ? 0.5 : (v - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const sy = (v: number) => H - pad.b - (y1 === y0 ? 0.5 : (v - y0) / (y1 - y0)) * (H - pad.t - pad.b);
  const front = points.filter((p) => p.front).sort((a, b) => a.x - b.x);
  return (
    <svg viewBox={`0 0 ${W} ${H}`} class="plot" role="img" aria-label="pareto front">
      <line x1={pad.l} x2={W - pad.r} y1={H - pad.b} y2={H - pad.b} stroke="#9aa4b2" />
      <line x1={pad.l} x2={pad.l} y1={pad.t} y2={H - pad.b} stroke="#9aa4b2" />
      <text x={(W + pad.l) / 2} y={H - 8} text-anchor="middle" class="axis-title">
        {xLabel}
      </text>
      <text x={pad.l} y={H - pad.b + 14} class="tick">
        {fmtNum(x0, 3)}
      </text>
      <text x={W - pad.r} y={H - pad.b + 14} text-anchor="end" class="tick">
        {fmtNum(x1, 3)}
      </text>
      <text
        x={14}
        y={(H - pad.b + pad.t) / 2}
        text-anchor="middle"
        class="axis-title"
        transform={`rotate(-90 14 ${(H - pad.b + pad.t) / 2})`}
      >
        {yLabel}
      </text>
      <text x={pad.l - 4} y={H - pad.b} text-anchor="end" class="tick">
        {fmtNum(y0, 3)}
      </text>
      <text x={pad.l - 4} y={pad.t + 8} text-anchor="end" class="tick">
        {fmtNum(y1, 3)}
      </text>
      {front.length > 1 && (
        <polyline
          points={front.map((p) => `${sx(p.x)},${sy(p.y)}`).join(' ')}
          fill="none"
          stroke={PALETTE[1]}
        />
      )}
      {points.map((p) => (
        <circle
          key={p.label}
          cx={sx(p.x)}
          cy={sy(p.y)}
          r={p.front ? 5 : 3.5}
          fill={p.front ? PALETTE[1] : PALETTE[0]}
        >
          <title>{p.label}</title>
        </circle>
      ))}
    </svg>
  );
}

/** Stacked bar of placement probabilities (1st…4th) per participant. */
export function PlacementBar({ probabilities }: { probabilities: number[] }) {
  const colors = ['#34d399', '#4ea1ff', '#f59e0b', '#f87171'];
  let x = 0;
  return (
    <svg viewBox="0 0 200 14" class="placement-bar" role="img" aria-label="placement probabilities">
      {probabilities.map((p, i) => {
        const w = Math.max(0, p) * 200;
        const el = (
          <rect key={i} x={x} y={0} width={w} height={14} fill={colors[i] ?? '#9aa4b2'}>
            <title>
              P(place {i + 1}) = {(p * 100).toFixed(1)} %
            </title>
          </rect>
        );
        x += w;
        return el;
      })}
    </svg>
  );
}

/** Points with error bars on a shared axis (ratings with uncertainty, credible intervals). */
export function Intervals({
  items,
  lowerIsBetter,
}: {
  items: Array<{ label: string; mid: number; lo: number; hi: number }>;
  lowerIsBetter?: boolean;
}) {
  if (items.length === 0) return <p class="muted">Nothing yet.</p>;
  const rowH = 22;
  const labelW = 160;
  const H = items.length * rowH + 26;
  const lo = Math.min(...items.map((i) => i.lo));
  const hi = Math.max(...items.map((i) => i.hi));
  const sx = (v: number) => labelW + (hi === lo ? 0.5 : (v - lo) / (hi - lo)) * (W - labelW - 20);
  return (
    <svg viewBox={`0 0 ${W} ${H}`} class="plot" role="img" aria-label="intervals">
      {items.map((it, i) => (
        <g key={it.label} transform={`translate(0 ${i * rowH + 6})`}>
          <text x={labelW - 8} y={13} text-anchor="end" class="tick">
            {it.label}
          </text>
          <line x1={sx(it.lo)} x2={sx(it.hi)} y1={9} y2={9} stroke="#9aa4b2" stroke-width={2} />
          <circle cx={sx(it.mid)} cy={9} r={4} fill={PALETTE[0]} />
        </g>
      ))}
      <text x={labelW} y={H - 4} class="tick">
        {fmtNum(lo, 3)}
        {lowerIsBetter ? ' (better)' : ''}
      </text>
      <text x={W - 20} y={H - 4} text-anchor="end" class="tick">
        {fmtNum(hi, 3)}
      </text>
    </svg>
  );
}
