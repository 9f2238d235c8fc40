/** A growable column of float64 values: appends in amortised O(1), hands out a view of what it holds. */
export class Column {
  private data: Float64Array;
  length = 0;

  constructor(capacity = 1024) {
    this.data = new Float64Array(capacity);
  }

  push(v: number) {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }

  get(i: number) {
    return this.data[i];
  }

  get last() {
    return this.length > 0 ? this.data[this.length - 1] : NaN;
  }

  view(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}

/**
 * TensorBoard's smoothing: an exponential moving average, debiased so the first points are not pulled towards 0.
 * Non-finite inputs are skipped (the smoothed value carries over).
 */
export function smooth(values: ArrayLike<number>, weight: number, out = new Float64Array(values.length)): Float64Array {
  let last = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) {
      last = last * weight + (1 - weight) * v;
      count++;
    }
    out[i] = count === 0 ? NaN : weight === 0 ? last : last / (1 - weight ** count);
  }
  return out;
}

/**
 * Min/max decimation for drawing: x sorted ascending; the range [x0, x1] is cut into `buckets` equal slices and
 * each slice keeps its first point, its minimum and maximum of every y series (in x order) and its last point, so
 * spikes survive however many points share a pixel. Returns arrays ready for uPlot. Data is never changed.
 */
export function decimate(x: Float64Array, ys: Float64Array[], x0: number, x1: number, buckets: number): [Float64Array, ...Float64Array[]] {
  let lo = lowerBound(x, x0);
  let hi = lowerBound(x, x1 + Number.EPSILON * Math.abs(x1));
  // One point beyond each edge keeps lines running to the plot's border when zoomed.
  lo = Math.max(0, lo - 1);
  hi = Math.min(x.length, hi + 1);
  const n = hi - lo;
  if (n <= buckets * 4) {
    return [x.slice(lo, hi), ...ys.map((y) => y.slice(lo, hi))];
  }
  const keep: number[] = [];
  const width = (x[hi - 1] - x[lo]) / buckets || 1;
  let i = lo;
  while (i < hi) {
    const end = Math.min(hi, Math.max(i + 1, lowerBound(x, x[lo] + width * (Math.floor((x[i] - x[lo]) / width) + 1), i, hi)));
    keep.push(i);
    for (const y of ys) {
      let min = i;
      let max = i;
      for (let j = i + 1; j < end; j++) {
        if (y[j] < y[min]) min = j;
        if (y[j] > y[max]) max = j;
      }
      keep.push(min, max);
    }
    keep.push(end - 1);
    i = end;
  }
  const idx = Array.from(new Set(keep)).sort((a, b) => a - b);
  const take = (a: Float64Array) => {
    const out = new Float64Array(idx.length);
    for (let k = 0; k < idx.length; k++) out[k] = a[idx[k]];
    return out;
  };
  return [take(x), ...ys.map(take)];
}

/** First index in [lo, hi) whose value is ≥ v (x ascending). */
export function lowerBound(x: ArrayLike<number>, v: number, lo = 0, hi = x.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
