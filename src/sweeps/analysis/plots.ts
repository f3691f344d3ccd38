/**
 * Analysis plots as standalone SVG documents — pure string building, no dependency: the
 * optimisation history (each completed trial's value and the best so far), parallel
 * coordinates (one line per completed trial across every parameter, coloured by its value) and
 * hyperparameter importance (bars).
 */
import type { Space } from '../space.js';
import { type NumericSpec, toUnit } from '../space.js';
import type { Analysis, AnalysisTrial } from './analyze.js';

const W = 720;
const H = 420;
const M = { left: 70, right: 20, top: 40, bottom: 50 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : Number(v.toPrecision(4)).toString();
}

function doc(title: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>
${body}
</svg>
`;
}

function scale(lo: number, hi: number, a: number, b: number): (v: number) => number {
  const span = hi - lo || 1;
  return (v) => a + ((v - lo) / span) * (b - a);
}

/** Blue (best) to red (worst). */
function colour(t: number): string {
  const x = Math.min(1, Math.max(0, t));
  return `rgb(${Math.round(40 + 200 * x)},${Math.round(90 + 40 * (1 - Math.abs(0.5 - x) * 2))},${Math.round(220 - 180 * x)})`;
}

export function historyPlot(a: Analysis, name: string): string {
  const metric = a.objectives[0]?.metric ?? 'objective';
  const pts = a.history.filter((h) => h.value !== null) as Array<{
    number: number;
    value: number;
    best: number;
  }>;
  if (pts.length === 0)
    return doc(
      `${name}: optimisation history`,
      `<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no completed trial</text>`,
    );
  const xs = a.history.map((h) => h.number);
  const ys = pts.map((p) => p.value);
  const x = scale(Math.min(...xs), Math.max(...xs), M.left, W - M.right);
  const y = scale(Math.min(...ys), Math.max(...ys), H - M.bottom, M.top);
  const dots = pts.map(
    (p) =>
      `<circle cx="${x(p.number).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="3.5" fill="#4a78c2" fill-opacity="0.7"><title>trial ${p.number}: ${fmt(p.value)}</title></circle>`,
  );
  const best = pts.map((p) => `${x(p.number).toFixed(1)},${y(p.best).toFixed(1)}`).join(' ');
  const axes = axesSvg(Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys), 'trial', metric);
  return doc(
    `${name}: optimisation history`,
    `${axes}\n<polyline points="${best}" fill="none" stroke="#d0473a" stroke-width="2"/>\n${dots.join('\n')}\n<text x="${W - M.right}" y="${M.top - 8}" text-anchor="end" fill="#d0473a">best so far</text>`,
  );
}

function axesSvg(x0: number, x1: number, y0: number, y1: number, xLabel: string, yLabel: string): string {
  const out = [
    `<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" stroke="#333"/>`,
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" stroke="#333"/>`,
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text x="16" y="${(M.top + H - M.bottom) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(M.top + H - M.bottom) / 2})">${esc(yLabel)}</text>`,
  ];
  const x = scale(x0, x1, M.left, W - M.right);
  const y = scale(y0, y1, H - M.bottom, M.top);
  for (let i = 0; i <= 4; i++) {
    const xv = x0 + ((x1 - x0) * i) / 4;
    const yv = y0 + ((y1 - y0) * i) / 4;
    out.push(`<text x="${x(xv).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle">${fmt(xv)}</text>`);
    out.push(`<text x="${M.left - 6}" y="${(y(yv) + 4).toFixed(1)}" text-anchor="end">${fmt(yv)}</text>`);
  }
  return out.join('\n');
}

export function parallelCoordinatesPlot(
  space: Space,
  trials: readonly AnalysisTrial[],
  a: Analysis,
  name: string,
): string {
  const params = Object.keys(space);
  const metric = a.objectives[0]?.metric ?? 'objective';
  const direction = a.objectives[0]?.direction ?? 'minimize';
  const done = trials.filter((t) => t.status === 'COMPLETED' && t.values?.[0] !== undefined);
  const axes = [...params, metric];
  const x = (i: number) => M.left + ((W - M.left - M.right) * i) / Math.max(1, axes.length - 1);
  const y = scale(0, 1, H - M.bottom, M.top);
  const values = done.map((t) => t.values?.[0] ?? 0);
  const vlo = Math.min(...values);
  const vhi = Math.max(...values);
  const unitOf = (p: string, v: unknown): number | null => {
    const s = space[p];
    if (!s || v === undefined) return null;
    if (s.type === 'categorical')
      return s.choices.length < 2
        ? 0.5
        : s.choices.indexOf(v as string | number | boolean) / (s.choices.length - 1);
    return toUnit(s as NumericSpec, Number(v));
  };
  const lines = done.map((t) => {
    const v = t.values?.[0] ?? 0;
    const rank = vhi === vlo ? 0 : (v - vlo) / (vhi - vlo);
    const quality = direction === 'minimize' ? rank : 1 - rank;
    const pts: string[] = [];
    axes.forEach((p, i) => {
      const u =
        i === axes.length - 1 ? (vhi === vlo ? 0.5 : (v - vlo) / (vhi - vlo)) : unitOf(p, t.params[p]);
      if (u !== null) pts.push(`${x(i).toFixed(1)},${y(u).toFixed(1)}`);
    });
    return `<polyline points="${pts.join(' ')}" fill="none" stroke="${colour(quality)}" stroke-opacity="0.6" stroke-width="1.5"><title>trial ${t.number}: ${fmt(v)}</title></polyline>`;
  });
  const axisSvg = axes.map((p, i) => {
    const s = space[p];
    const lo = s === undefined ? fmt(vlo) : s.type === 'categorical' ? String(s.choices[0]) : fmt(s.low);
    const hi =
      s === undefined
        ? fmt(vhi)
        : s.type === 'categorical'
          ? String(s.choices[s.choices.length - 1])
          : fmt(s.high);
    return `<line x1="${x(i).toFixed(1)}" y1="${M.top}" x2="${x(i).toFixed(1)}" y2="${H - M.bottom}" stroke="#333"/>
<text x="${x(i).toFixed(1)}" y="${H - M.bottom + 30}" text-anchor="middle">${esc(p)}</text>
<text x="${x(i).toFixed(1)}" y="${H - M.bottom + 14}" text-anchor="middle" font-size="10">${esc(lo)}</text>
<text x="${x(i).toFixed(1)}" y="${M.top - 4}" text-anchor="middle" font-size="10">${esc(hi)}</text>`;
  });
  return doc(
    `${name}: parallel coordinates (${done.length} completed trials)`,
    `${lines.join('\n')}\n${axisSvg.join('\n')}`,
  );
}

export function importancePlot(a: Analysis, name: string): string {
  const rows = a.importance;
  const barH = Math.min(28, (H - M.top - M.bottom) / Math.max(1, rows.length));
  const left = 160;
  const max = Math.max(...rows.map((r) => r.importance), 1e-12);
  const bars = rows.map((r, i) => {
    const w = ((W - left - M.right - 50) * r.importance) / max;
    const yy = M.top + i * barH;
    return `<text x="${left - 8}" y="${(yy + barH * 0.65).toFixed(1)}" text-anchor="end">${esc(r.param)}</text>
<rect x="${left}" y="${(yy + barH * 0.15).toFixed(1)}" width="${w.toFixed(1)}" height="${(barH * 0.7).toFixed(1)}" fill="#4a78c2"/>
<text x="${(left + w + 6).toFixed(1)}" y="${(yy + barH * 0.65).toFixed(1)}">${fmt(r.importance)}</text>`;
  });
  return doc(`${name}: hyperparameter importance (${a.importance_method})`, bars.join('\n'));
}
