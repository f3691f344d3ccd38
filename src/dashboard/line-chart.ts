import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/**
 * uPlot behind a small interface, in its own chunk: the first view (the overview) has no chart,
 * so it does not wait for the chart library to load.
 */
export interface LineSeries {
  label: string;
  values: Array<number | null>;
  color: string;
  /** Draw points only (e.g. one trial per point). */
  points?: boolean;
}

export interface LineChartSpec {
  x: number[];
  series: LineSeries[];
  /** x is epoch seconds: time axis. */
  time?: boolean;
  xLabel?: string;
  yLabel?: string;
  logY?: boolean;
  height: number;
}

export interface ChartHandle {
  update(spec: LineChartSpec): void;
  resize(width: number): void;
  destroy(): void;
}

function options(spec: LineChartSpec, width: number): uPlot.Options {
  return {
    width,
    height: spec.height,
    scales: { x: { time: spec.time ?? false }, y: spec.logY ? { distr: 3 } : {} },
    axes: [
      { label: spec.xLabel, stroke: '#9aa4b2', grid: { stroke: '#2a3140' }, ticks: { stroke: '#2a3140' } },
      { label: spec.yLabel, stroke: '#9aa4b2', grid: { stroke: '#2a3140' }, ticks: { stroke: '#2a3140' } },
    ],
    cursor: { drag: { x: true, y: false } },
    series: [
      { label: spec.xLabel ?? 'x' },
      ...spec.series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: s.points ? 0 : 1.5,
        // A line needs two points: with fewer (a new run, a metric reported once) show the dots.
        points:
          s.points || spec.x.length < 3
            ? { show: true, size: 6, fill: s.color, stroke: s.color }
            : { show: false },
        spanGaps: true,
      })),
    ],
  };
}

function data(spec: LineChartSpec): uPlot.AlignedData {
  return [spec.x, ...spec.series.map((s) => s.values)] as uPlot.AlignedData;
}

export function createLineChart(el: HTMLElement, spec: LineChartSpec): ChartHandle {
  let current = spec;
  let width = Math.max(200, el.clientWidth);
  let plot = new uPlot(options(spec, width), data(spec), el);
  return {
    update(next) {
      const sameShape =
        next.series.length === current.series.length &&
        next.x.length >= 3 === current.x.length >= 3 &&
        next.series.every((s, i) => s.label === current.series[i]?.label) &&
        next.logY === current.logY;
      current = next;
      if (sameShape) plot.setData(data(next));
      else {
        plot.destroy();
        plot = new uPlot(options(next, width), data(next), el);
      }
    },
    resize(w) {
      width = Math.max(200, w);
      plot.setSize({ width, height: current.height });
    },
    destroy() {
      plot.destroy();
    },
  };
}
