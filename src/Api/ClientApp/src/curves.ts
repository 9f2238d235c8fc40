import { palette } from './palette';

/** A job's colour: the palette, then evenly spaced hues for the 11th to the 20th. */
export function colorOf(i: number): string {
  return i < palette.length ? palette[i] : `hsl(${Math.round(((i - palette.length) * 360) / 10 + 15)} 55% 45%)`;
}

/** One job's points of one tag: x by step, and by epoch (a step's epoch is fractional: step ÷ steps per epoch). */
export interface Curve { steps: Float64Array; epochs: Float64Array; values: Float64Array }

/** Parses history CSV rows (step,epoch,time,tag,value) of one tag; `stepsPerEpoch` places step rows on the epoch axis. */
export function parseCurve(csv: string, tag: string, stepsPerEpoch: number): Curve {
  const steps: number[] = [];
  const epochs: number[] = [];
  const values: number[] = [];
  const perStep = tag.startsWith('step/');
  for (const line of csv.split('\n').slice(1)) {
    if (!line) continue;
    const f = line.split(',');
    if (f[3] !== tag) continue;
    const step = Number(f[0]);
    steps.push(step);
    epochs.push(perStep && stepsPerEpoch > 0 ? step / stepsPerEpoch : Number(f[1]));
    values.push(Number(f[4]));
  }
  return { steps: Float64Array.from(steps), epochs: Float64Array.from(epochs), values: Float64Array.from(values) };
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

