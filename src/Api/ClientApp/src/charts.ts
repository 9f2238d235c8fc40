import uPlot from 'uplot';
import { fmt } from './dom';
import { probe } from './probe';
import { decimate } from './series';

export { palette } from './palette';

export interface LineSpec {
  label: string;
  color: string;
  width?: number;
  dash?: number[];
  points?: boolean;
}

export interface ChartOptions {
  title: string;
  x: string;
  series: LineSpec[];
  log?: boolean;
  /** A logarithmic x axis (the learning rate of a range test). */
  logX?: boolean;
  /** A horizontal band to shade (e.g. the healthy update/weight ratios) and a dashed line at its mark. */
  band?: { from: number; to: number; mark: number };
  height?: number;
  format?: (v: number) => string;
  /** x positions to mark with a vertical line (e.g. the steps after which hyperparameters changed). */
  markers?: () => number[];
  /** A fixed y range (e.g. [0, 1] for fractions) instead of the data's. */
  yRange?: [number, number];
}

/** The full data a chart draws from: an ascending x column and one y column per series (views, never copied). */
export type Source = () => { x: Float64Array; ys: Float64Array[] };

/**
 * A uPlot line chart that draws a decimated copy of its source: about two points per pixel column per series over
 * the visible x range (min and max survive), recomputed on zoom, so 100,000 points draw as fast as 2,000 and a
 * spike never disappears. Drag to zoom, double-click to follow the whole run again.
 */
export class LineChart {
  private plot?: uPlot;
  private zoom: [number, number] | null = null;
  private pending = false;
  private stale = true;
  private visible = false;
  private readonly resize: ResizeObserver;
  private readonly seen: IntersectionObserver;
  /** Called after each draw that showed new data (the dashboard measures latency with it). */
  onDrawn?: () => void;
  /** Called when a person zooms (the x range) or goes back to the whole run (null): a page can fetch that range's detail. */
  onZoom?: (range: [number, number] | null) => void;

  constructor(private readonly host: HTMLElement, private options: ChartOptions, private readonly source: Source) {
    // The canvas is a picture; its legend (a table of the values under the cursor) is the text.
    host.setAttribute('role', 'figure');
    host.setAttribute('aria-label', options.title);
    this.build();
    this.resize = new ResizeObserver(() => {
      if (this.plot && Math.abs(this.plot.width - this.width()) > 1) {
        this.plot.setSize({ width: this.width(), height: this.height() });
        this.invalidate();
      }
    });
    this.resize.observe(host);
    // Off-screen charts keep their data but skip drawing until scrolled near: a long page stays cheap to update.
    this.seen = new IntersectionObserver((entries) => {
      this.visible = entries[entries.length - 1].isIntersecting;
      if (this.visible && this.stale) this.invalidate();
    }, { rootMargin: '300px 0px' });
    this.seen.observe(host);
  }

  /** New data: redraws at the next animation frame (at most once per frame), or when it comes into view. */
  invalidate() {
    this.stale = true;
    if (this.pending || !this.visible) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  setLog(log: boolean) {
    this.options = { ...this.options, log };
    this.build();
  }

  destroy() {
    this.resize.disconnect();
    this.seen.disconnect();
    this.plot?.destroy();
  }

  private width() {
    return Math.max(200, this.host.clientWidth);
  }

  private height() {
    return this.options.height ?? 220;
  }

  private build() {
    this.plot?.destroy();
    const o = this.options;
    const band = o.band;
    const opts: uPlot.Options = {
      title: o.title,
      width: this.width(),
      height: this.height(),
      scales: { x: o.logX ? { time: false, distr: 3 } : { time: false }, y: o.log ? { distr: 3 } : o.yRange ? { range: o.yRange } : {} },
      axes: [
        o.logX ? { label: o.x, values: (_u, vals) => vals.map((v) => (v == null ? '' : fmt.tick(v))) } : { label: o.x, incrs: integerSteps },
        { size: 60, values: (_u, vals) => vals.map((v) => (v == null ? '' : o.format ? o.format(v) : fmt.tick(v))) },
      ],
      legend: { live: true },
      cursor: {
        drag: { x: true, y: false, setScale: false },
        bind: {
          dblclick: () => () => {
            this.zoom = null;
            this.draw();
            this.onZoom?.(null);
            return null;
          },
        },
      },
      series: [
        { label: o.x },
        ...o.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.width ?? 1.5,
          dash: s.dash,
          points: { show: s.points ?? false },
          spanGaps: true,
          value: o.format ? (_u: uPlot, v: number | null) => (v == null ? '–' : o.format!(v)) : undefined,
        })),
      ],
      hooks: {
        draw: o.markers
          ? [
              (u) => {
                const ctx = u.ctx;
                ctx.save();
                ctx.strokeStyle = 'rgba(176, 122, 161, 0.9)';
                ctx.setLineDash([3, 3]);
                for (const m of o.markers!()) {
                  const x = u.valToPos(m, 'x', true);
                  if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
                  ctx.beginPath();
                  ctx.moveTo(x, u.bbox.top);
                  ctx.lineTo(x, u.bbox.top + u.bbox.height);
                  ctx.stroke();
                }
                ctx.restore();
              },
            ]
          : [],
        // uPlot's own drag-zoom is off (drag.setScale = false): a selection becomes our zoom, so the chart redraws
        // the decimated data of that range rather than stretching the points of the whole run.
        setSelect: [
          (u) => {
            if (u.select.width < 2) return;
            const min = u.posToVal(u.select.left, 'x');
            const max = u.posToVal(u.select.left + u.select.width, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            this.zoom = [min, max];
            this.draw();
            this.onZoom?.([min, max]);
          },
        ],
        drawClear: band
          ? [
              (u) => {
                const ctx = u.ctx;
                const top = u.valToPos(band.to, 'y', true);
                const bottom = u.valToPos(band.from, 'y', true);
                const mark = u.valToPos(band.mark, 'y', true);
                ctx.save();
                ctx.fillStyle = 'rgba(89, 161, 79, 0.13)';
                const y0 = Math.max(u.bbox.top, Math.min(top, bottom));
                const y1 = Math.min(u.bbox.top + u.bbox.height, Math.max(top, bottom));
                if (y1 > y0) ctx.fillRect(u.bbox.left, y0, u.bbox.width, y1 - y0);
                if (mark >= u.bbox.top && mark <= u.bbox.top + u.bbox.height) {
                  ctx.strokeStyle = 'rgba(89, 161, 79, 0.8)';
                  ctx.setLineDash([6, 4]);
                  ctx.beginPath();
                  ctx.moveTo(u.bbox.left, mark);
                  ctx.lineTo(u.bbox.left + u.bbox.width, mark);
                  ctx.stroke();
                }
                ctx.restore();
              },
            ]
          : [],
      },
    };
    const empty: uPlot.AlignedData = [[], ...o.series.map(() => [])];
    this.plot = new uPlot(opts, empty, this.host);
    this.invalidate();
  }

  private draw() {
    const plot = this.plot;
    if (!plot) return;
    this.stale = false;
    const t = performance.now();
    const { x, ys } = this.source();
    const buckets = Math.max(100, Math.floor(plot.bbox.width / devicePixelRatio || this.width()));
    let x0 = x.length > 0 ? x[0] : 0;
    let x1 = x.length > 0 ? x[x.length - 1] : 1;
    if (this.zoom) [x0, x1] = this.zoom;
    const [dx, ...dys] = decimate(x, ys, x0, x1, buckets);
    const log = this.options.log === true;
    const clean = (a: Float64Array) => Array.from(a, (v) => (Number.isFinite(v) && (!log || v > 0) ? v : null));
    plot.batch(() => {
      plot.setData([Array.from(dx), ...dys.map(clean)], !this.zoom);
      if (this.zoom) plot.setScale('x', { min: this.zoom[0], max: this.zoom[1] });
    });
    probe.timings.drawMs += performance.now() - t;
    this.onDrawn?.();
  }
}

/**
 * Activation histograms of one layer over time as a heat strip (TensorBoard's "distributions" idea): time runs to
 * the right, value upward over the layer's whole range, colour is the share of outputs in a bin. Each measurement's
 * histogram covers its own [min, max]; it is re-binned onto the strip's common range. When there are more
 * measurements than pixel columns, a column shows the mean of its measurements.
 */
export class HeatStrip {
  private readonly canvas: HTMLCanvasElement;
  private readonly caption: HTMLElement;
  private readonly seen: IntersectionObserver;
  private visible = false;
  /** Draws again with the latest data; set by the owner, called when the strip comes into view. */
  onVisible?: () => void;

  constructor(host: HTMLElement, private readonly label: string) {
    const figure = document.createElement('figure');
    figure.className = 'strip';
    this.caption = document.createElement('figcaption');
    this.canvas = document.createElement('canvas');
    this.canvas.height = 56;
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', `Activation histograms of ${label} over time`);
    figure.append(this.caption, this.canvas);
    host.append(figure);
    this.seen = new IntersectionObserver((entries) => {
      this.visible = entries[entries.length - 1].isIntersecting;
      if (this.visible) this.onVisible?.();
    }, { rootMargin: '300px 0px' });
    this.seen.observe(figure);
  }

  get isVisible() {
    return this.visible;
  }

  destroy() {
    this.seen.disconnect();
  }

  draw(histograms: number[][], mins: Float64Array, maxs: Float64Array, steps: Float64Array) {
    const n = histograms.length;
    const width = Math.max(100, Math.floor(this.canvas.clientWidth || 600));
    const rows = this.canvas.height;
    this.canvas.width = width;
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < n; i++) {
      if (Number.isFinite(mins[i])) lo = Math.min(lo, mins[i]);
      if (Number.isFinite(maxs[i])) hi = Math.max(hi, maxs[i]);
    }
    const range = hi > lo ? hi - lo : 1;
    const fmt = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(3)).toString() : '–');
    const last = n > 0 ? `steps ${steps[0]}–${steps[n - 1]}` : 'no measurements yet';
    this.caption.textContent = `${this.label}: values ${fmt(lo)} … ${fmt(hi)}, ${last}`;
    this.canvas.setAttribute('aria-label', `Activation histograms of ${this.label} over time, values ${fmt(lo)} to ${fmt(hi)}, ${last}`);
    const ctx = this.canvas.getContext('2d')!;
    const image = ctx.createImageData(width, rows);
    const columns = Math.min(width, n);
    const column = new Float64Array(rows);
    for (let c = 0; c < columns; c++) {
      column.fill(0);
      const from = Math.floor((c * n) / columns);
      const to = Math.max(from + 1, Math.floor(((c + 1) * n) / columns));
      for (let i = from; i < to; i++) {
        const h = histograms[i];
        let total = 0;
        for (const count of h) total += count;
        if (total === 0 || !Number.isFinite(mins[i]) || !Number.isFinite(maxs[i])) continue;
        const binWidth = (maxs[i] - mins[i]) / h.length;
        for (let b = 0; b < h.length; b++) {
          if (h[b] === 0) continue;
          const centre = mins[i] + (b + 0.5) * binWidth;
          const row = Math.min(rows - 1, Math.max(0, Math.floor(((hi - centre) / range) * rows)));
          column[row] += h[b] / total / (to - from);
        }
      }
      let peak = 0;
      for (const v of column) peak = Math.max(peak, v);
      const x0 = Math.floor((c * width) / columns);
      const x1 = Math.floor(((c + 1) * width) / columns);
      for (let r = 0; r < rows; r++) {
        const [red, green, blue] = heat(peak > 0 ? Math.sqrt(column[r] / peak) : 0);
        for (let x = x0; x < x1; x++) {
          const p = (r * width + x) * 4;
          image.data[p] = red;
          image.data[p + 1] = green;
          image.data[p + 2] = blue;
          image.data[p + 3] = 255;
        }
      }
    }
    ctx.putImageData(image, 0, 0);
  }
}

/** 0..1 → a dark-blue-to-yellow ramp (close to viridis), readable for colour-blind people. */
function heat(t: number): [number, number, number] {
  const stops: [number, number, number][] = [
    [247, 247, 247],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ];
  if (t <= 0) return stops[0];
  const s = Math.min(0.9999, t) * (stops.length - 2);
  const i = Math.floor(s);
  const f = s - i;
  const a = stops[i + 1];
  const b = stops[Math.min(stops.length - 1, i + 2)];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** Tick spacings for x axes that count steps or epochs: whole numbers only. */
const integerSteps = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 25_000, 50_000, 100_000, 200_000, 500_000, 1_000_000];
