import { fmt } from './dom';
import { formatParam, shortPath } from './sweeps';
import type { SearchDimension, SearchRange } from './types';

/** One vertical axis of a parallel-coordinates plot: where a value sits on it, 0 (bottom) to 1 (top), and its ticks. */
export interface Axis {
  /** Shown above the axis. */
  label: string;
  /** The search-space path or the metric, in full (the axis's title). */
  title: string;
  kind: 'linear' | 'log' | 'category';
  /** 0 … 1, or null for a value that cannot be placed (missing, not a number, not one of the choices). */
  place(v: unknown): number | null;
  ticks: { at: number; label: string }[];
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * A search dimension's axis: a choice is categorical (its values evenly spaced, in the order given); logUniform is
 * logarithmic over its range; uniform and intUniform are linear over theirs. A range that cannot be drawn (missing,
 * empty, or not above 0 on a log axis) falls back to the trials' own values; a dimension of no known kind to categories
 * of the values seen.
 */
export function dimensionAxis(d: SearchDimension, values: readonly unknown[]): Axis {
  const title = d.path;
  const label = shortPath(d.path);
  if (Array.isArray(d.choice)) return categoryAxis(label, title, d.choice);
  if (d.logUniform) {
    const [lo, hi] = domain(d.logUniform, values, true);
    if (lo > 0) return logAxis(label, title, lo, hi);
  }
  const range = d.uniform ?? d.intUniform ?? d.logUniform;
  if (range) return linearAxis(label, title, ...domain(range, values, false), formatParam);
  return categoryAxis(label, title, [...new Map(values.filter((v) => v !== undefined).map((v) => [JSON.stringify(v), v])).values()]);
}

/** The metric's axis: linear over the values there are (a little beyond a single value), higher up. */
export function valueAxis(label: string, title: string, values: readonly unknown[], format: (v: number) => string): Axis {
  const xs = values.filter(finite);
  let lo = xs.length ? Math.min(...xs) : 0;
  let hi = xs.length ? Math.max(...xs) : 1;
  if (hi === lo) {
    const pad = Math.abs(lo) * 0.1 || 0.5;
    lo -= pad;
    hi += pad;
  }
  return linearAxis(label, title, lo, hi, format);
}

function domain(range: SearchRange, values: readonly unknown[], log: boolean): [number, number] {
  const ok = (v: unknown): v is number => finite(v) && (!log || v > 0);
  if (ok(range.min) && ok(range.max) && range.max > range.min) return [range.min, range.max];
  const xs = values.filter(ok);
  if (xs.length === 0) return log ? [0, 0] : [0, 1];
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return hi > lo ? [lo, hi] : log ? [lo / 10, hi * 10] : [lo - (Math.abs(lo) * 0.1 || 0.5), hi + (Math.abs(hi) * 0.1 || 0.5)];
}

const clamp = (t: number) => Math.min(1, Math.max(0, t));

function categoryAxis(label: string, title: string, choices: readonly unknown[]): Axis {
  const keys = choices.map((c) => JSON.stringify(c));
  const at = (i: number) => (keys.length === 1 ? 0.5 : i / (keys.length - 1));
  return {
    label, title, kind: 'category',
    place: (v) => {
      const i = v === undefined ? -1 : keys.indexOf(JSON.stringify(v));
      return i < 0 ? null : at(i);
    },
    ticks: choices.map((c, i) => ({ at: at(i), label: formatParam(c) })),
  };
}

function linearAxis(label: string, title: string, lo: number, hi: number, format: (v: number) => string): Axis {
  return {
    label, title, kind: 'linear',
    place: (v) => (finite(v) ? clamp((v - lo) / (hi - lo)) : null),
    ticks: niceTicks(lo, hi, 5).map((v) => ({ at: (v - lo) / (hi - lo), label: format(v) })),
  };
}

function logAxis(label: string, title: string, lo: number, hi: number): Axis {
  const l0 = Math.log10(lo);
  const l1 = Math.log10(hi);
  const decades: number[] = [];
  for (let k = Math.ceil(l0 - 1e-9); k <= Math.floor(l1 + 1e-9); k++) decades.push(10 ** k);
  const marks = decades.length >= 2 ? decades : [lo, ...decades.filter((d) => d > lo && d < hi), hi];
  return {
    label, title, kind: 'log',
    place: (v) => (finite(v) && v > 0 ? clamp((Math.log10(v) - l0) / (l1 - l0)) : null),
    ticks: marks.map((v) => ({ at: (Math.log10(v) - l0) / (l1 - l0), label: fmt.tick(v) })),
  };
}

/** Round numbers from lo to hi, about `count` of them, at 1, 2 or 5 × a power of ten apart. */
export function niceTicks(lo: number, hi: number, count: number): number[] {
  if (!(hi > lo) || !Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  const raw = (hi - lo) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/**
 * 0 … 1 → a dark-purple-to-yellow ramp (viridis), which reads in order for colour-blind people too; the page maps the
 * worst value to 0 and the best to 1.
 */
export function ramp(t: number): string {
  const stops: [number, number, number][] = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const s = clamp(Number.isFinite(t) ? t : 0) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(s));
  const f = s - i;
  const [a, b] = [stops[i], stops[i + 1]];
  const c = (k: number) => Math.round(a[k] + (b[k] - a[k]) * f);
  return `rgb(${c(0)}, ${c(1)}, ${c(2)})`;
}

/** 0 for the worst of the values, 1 for the best (the goal says which way is better); 1 when all are equal. */
export function goodness(v: number, lo: number, hi: number, maximize: boolean): number {
  if (!(hi > lo)) return 1;
  const t = clamp((v - lo) / (hi - lo));
  return maximize ? t : 1 - t;
}

/** One trial's polyline: a value per axis (its settings, then its metric), its colour, and whether it is the best. */
export interface ParallelLine {
  trial: number;
  values: unknown[];
  color: string;
  best: boolean;
  /** No metric value yet: drawn dashed and grey. */
  pending: boolean;
}

/**
 * A parallel-coordinates plot on a canvas: one vertical axis per setting and one for the metric, a polyline per
 * trial, the best drawn last and thickest. The canvas is a picture; its caption and the leaderboard are the text.
 */
export class ParallelPlot {
  private readonly canvas: HTMLCanvasElement;
  private readonly resize: ResizeObserver;
  private last?: { axes: Axis[]; lines: ParallelLine[] };
  /** The axes drawn (their titles) and where each line was placed on each (0 … 1, null: not placed): for the browser tests. */
  axes: string[] = [];
  placed: { trial: number; best: boolean; at: (number | null)[] }[] = [];

  constructor(private readonly host: HTMLElement, private readonly height = 300) {
    this.canvas = document.createElement('canvas');
    this.canvas.setAttribute('role', 'img');
    this.canvas.style.cssText = `width:100%;height:${height}px;display:block`;
    host.append(this.canvas);
    this.resize = new ResizeObserver(() => { if (this.last) this.draw(this.last.axes, this.last.lines); });
    this.resize.observe(host);
  }

  destroy() {
    this.resize.disconnect();
  }

  draw(axes: Axis[], lines: ParallelLine[]) {
    this.last = { axes, lines };
    const width = Math.max(200, this.host.clientWidth);
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(this.height * ratio);
    const ctx = this.canvas.getContext('2d');
    this.axes = axes.map((a) => a.title);
    this.placed = lines.map((l) => ({ trial: l.trial, best: l.best, at: axes.map((a, i) => a.place(l.values[i])) }));
    this.canvas.setAttribute('aria-label', `Parallel coordinates of ${lines.length} trials over ${axes.map((a) => a.title).join(', ')}`);
    if (!ctx) return;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, this.height);
    const top = 46;
    const bottom = this.height - 16;
    const left = 60;
    const right = width - 60;
    const xOf = (i: number) => (axes.length === 1 ? (left + right) / 2 : left + ((right - left) * i) / (axes.length - 1));
    const yOf = (t: number) => bottom - (bottom - top) * t;

    // Lines first, the best last (on top), each broken where a value cannot be placed.
    const order = [...this.placed.keys()].sort((a, b) => Number(lines[a].best) - Number(lines[b].best) || Number(lines[b].pending) - Number(lines[a].pending));
    for (const k of order) {
      const line = lines[k];
      ctx.save();
      ctx.setLineDash(line.pending ? [4, 4] : []);
      ctx.beginPath();
      let drawing = false;
      this.placed[k].at.forEach((t, i) => {
        if (t === null) { drawing = false; return; }
        if (drawing) ctx.lineTo(xOf(i), yOf(t));
        else ctx.moveTo(xOf(i), yOf(t));
        drawing = true;
      });
      if (line.best) {
        // A dark outline under the best line: its colour (the ramp's yellow) stands out from the others and the page.
        ctx.strokeStyle = '#1d2430';
        ctx.lineWidth = 7;
        ctx.stroke();
      }
      ctx.strokeStyle = line.pending ? 'rgba(120, 120, 120, 0.7)' : line.color;
      ctx.lineWidth = line.best ? 4 : 1.5;
      ctx.stroke();
      if (line.pending) {
        // No value yet: its settings as dots, which a line of one point would not show.
        ctx.fillStyle = 'rgba(120, 120, 120, 0.9)';
        this.placed[k].at.forEach((t, i) => {
          if (t === null) return;
          ctx.beginPath();
          ctx.arc(xOf(i), yOf(t), 2.5, 0, 2 * Math.PI);
          ctx.fill();
        });
      }
      ctx.restore();
    }

    ctx.font = '12px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    axes.forEach((axis, i) => {
      const x = xOf(i);
      ctx.strokeStyle = '#1d2430';
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
      ctx.stroke();
      // The axis's name and kind above it, kept inside the canvas at the edges.
      ctx.textAlign = 'center';
      ctx.font = '600 12px system-ui, sans-serif';
      ctx.fillStyle = '#1d2430';
      const name = fit(ctx, axis.label, Math.min(2 * left + 40, Math.max(60, (right - left) / Math.max(1, axes.length - 1) - 8)));
      const half = ctx.measureText(name).width / 2;
      ctx.fillText(name, Math.min(width - half - 2, Math.max(half + 2, x)), 12);
      ctx.font = '11px system-ui, sans-serif';
      ctx.fillStyle = '#5b6473';
      ctx.fillText(axis.kind === 'log' ? 'log scale' : axis.kind === 'category' ? 'choices' : '', x, 28);
      ctx.textAlign = i === axes.length - 1 ? 'left' : 'right';
      for (const tick of axis.ticks) {
        const y = yOf(tick.at);
        ctx.beginPath();
        ctx.moveTo(x - 3, y);
        ctx.lineTo(x + 3, y);
        ctx.stroke();
        ctx.fillStyle = 'rgba(255, 255, 255, 0.85)';
        const text = fit(ctx, tick.label, 50);
        const w = ctx.measureText(text).width;
        const tx = i === axes.length - 1 ? x + 5 : x - 5;
        ctx.fillRect(i === axes.length - 1 ? tx - 1 : tx - w - 1, y - 7, w + 2, 14);
        ctx.fillStyle = '#1d2430';
        ctx.fillText(text, tx, y);
      }
    });
  }
}

/** The text, cut with an ellipsis to fit the width. */
function fit(ctx: CanvasRenderingContext2D, text: string, width: number): string {
  if (ctx.measureText(text).width <= width) return text;
  let s = text;
  while (s.length > 1 && ctx.measureText(`${s}…`).width > width) s = s.slice(0, -1);
  return `${s}…`;
}
