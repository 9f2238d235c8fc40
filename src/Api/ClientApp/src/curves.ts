import { palette } from './palette';

/** A job's colour: the palette, then evenly spaced hues for the 11th to the 20th. */
export function colorOf(i: number): string {
  return i < palette.length ? palette[i] : `hsl(${Math.round(((i - palette.length) * 360) / 10 + 15)} 55% 45%)`;
}

/** One job's points of one tag: x by step, and by epoch (a step's epoch is fractional: step ÷ steps per epoch). */
export interface Curve { steps: Float64Array; epochs: Float64Array; values: Float64Array }

const empty = (): Curve => ({ steps: new Float64Array(), epochs: new Float64Array(), values: new Float64Array() });

/**
 * Parses GET /jobs/{id}/history?format=columns — JSON Lines of { tag, step: [], epoch: [], value: [] }, a line per tag
 * and run of events — into one curve per tag asked for (empty when the history has none). `stepsPerEpoch` places step
 * rows on the epoch axis. A line that is not such a block is skipped, a value that is not a number is NaN.
 */
export function parseColumns(text: string, tags: readonly string[], stepsPerEpoch: number): Map<string, Curve> {
  const blocks = new Map<string, { step: unknown[]; epoch: unknown[]; value: unknown[] }[]>(tags.map((t) => [t, []]));
  for (const line of text.split('\n')) {
    if (!line) continue;
    let block: unknown;
    try {
      block = JSON.parse(line);
    } catch {
      continue;
    }
    const b = block as { tag?: unknown; step?: unknown; epoch?: unknown; value?: unknown };
    const list = typeof b?.tag === 'string' ? blocks.get(b.tag) : undefined;
    if (!list || !Array.isArray(b.step) || !Array.isArray(b.epoch) || !Array.isArray(b.value)) continue;
    if (b.step.length !== b.value.length || b.epoch.length !== b.value.length) continue;
    list.push({ step: b.step, epoch: b.epoch, value: b.value });
  }
  const curves = new Map<string, Curve>();
  for (const [tag, list] of blocks) {
    const n = list.reduce((sum, b) => sum + b.value.length, 0);
    if (n === 0) {
      curves.set(tag, empty());
      continue;
    }
    const curve: Curve = { steps: new Float64Array(n), epochs: new Float64Array(n), values: new Float64Array(n) };
    const perStep = tag.startsWith('step/') && stepsPerEpoch > 0;
    let i = 0;
    for (const b of list) {
      for (let k = 0; k < b.value.length; k++, i++) {
        const step = Number(b.step[k]);
        curve.steps[i] = step;
        curve.epochs[i] = perStep ? step / stepsPerEpoch : Number(b.epoch[k]);
        curve.values[i] = Number(b.value[k]); // NaN and ±Infinity arrive as strings, which Number reads
      }
    }
    curves.set(tag, curve);
  }
  return curves;
}

/**
 * The rows to ask /history for (its points=) to fill a chart `width` CSS pixels wide: two per pixel column, as
 * LineChart draws them (each column's lowest and highest), within 1,000..8,000.
 */
export function chartPoints(width: number): number {
  return Math.min(8000, Math.max(1000, 2 * Math.round(width)));
}

/**
 * A curve with the steps from..to (inclusive) replaced by `detail`, that range's rows fetched again at full or finer
 * resolution (a zoom): the overview's points outside the range stay, so the curve still reaches both ends.
 */
export function splice(curve: Curve, detail: Curve, from: number, to: number): Curve {
  let before = 0;
  while (before < curve.steps.length && curve.steps[before] < from) before++;
  let after = before;
  while (after < curve.steps.length && curve.steps[after] <= to) after++;
  const n = before + detail.steps.length + (curve.steps.length - after);
  const out: Curve = { steps: new Float64Array(n), epochs: new Float64Array(n), values: new Float64Array(n) };
  for (const key of ['steps', 'epochs', 'values'] as const) {
    out[key].set(curve[key].subarray(0, before), 0);
    out[key].set(detail[key], before);
    out[key].set(curve[key].subarray(after), before + detail.steps.length);
  }
  return out;
}

/** Curves on one ascending x column (the union of their x values), NaN where a job has no point: uPlot's aligned data. */
export function align(curves: Curve[], byEpoch: boolean): { x: Float64Array; ys: Float64Array[] } {
  const xsOf = (c: Curve) => (byEpoch ? c.epochs : c.steps);
  const all = new Float64Array(curves.reduce((n, c) => n + c.values.length, 0));
  let n = 0;
  for (const c of curves) { all.set(xsOf(c), n); n += c.values.length; }
  all.sort();
  let unique = 0;
  for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[unique - 1]) all[unique++] = all[i];
  const x = all.slice(0, unique);
  const ys = curves.map((c) => {
    const y = new Float64Array(x.length).fill(NaN);
    const xs = xsOf(c);
    let j = 0;
    for (let i = 0; i < xs.length; i++) {
      while (x[j] < xs[i]) j++;
      y[j] = c.values[i];
    }
    return y;
  });
  return { x, ys };
}

/**
 * A gate letting at most `limit` tasks run at once, the others in the order they came: a page asking for many jobs'
 * histories keeps a few requests in flight and parses each answer as it comes, rather than all arriving together.
 */
export function limiter(limit: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running < limit) running++;
    else await new Promise<void>((resolve) => waiting.push(resolve)); // a finishing task hands its place over
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}
