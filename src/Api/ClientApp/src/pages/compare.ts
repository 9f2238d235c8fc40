import { api, ApiError } from '../api';
import { LineChart } from '../charts';
import { align, chartPoints, colorOf, limiter, parseColumns, splice, type Curve } from '../curves';
import { fmt, h, type Page } from '../dom';
import { probe } from '../probe';
import type { JobView } from '../types';

/** What can be overlaid: a history tag, and whether it is per step or per epoch. */
const metrics = [
  { tag: 'step/loss', label: 'Loss (each step)' },
  { tag: 'epoch/validation_accuracy', label: 'Validation accuracy (each epoch)' },
  { tag: 'epoch/validation_loss', label: 'Validation loss (each epoch)' },
  { tag: 'epoch/train_loss', label: 'Training loss (each epoch)' },
  { tag: 'epoch/train_accuracy', label: 'Training accuracy (each epoch)' },
  { tag: 'step/learning_rate', label: 'Learning rate' },
] as const;

/**
 * #/compare?ids=…: 2 to 20 jobs side by side — one metric's curves overlaid (one colour per job), by step or by epoch,
 * and the table of the settings in which the jobs differ. The histories are asked for at once with the jobs' views,
 * four at a time, as columns (one number array per field), and each is parsed as it arrives. Each is downsampled by
 * the server to what the chart can draw (`points`: about two per pixel column, each bucket's lowest and highest value,
 * so a spike survives); a zoom draws the overview's points of its range at once and then asks for that range again
 * at the same resolution, so each zoom shows finer detail, down to every step.
 */
export function comparePage(main: HTMLElement, query: URLSearchParams): Page {
  const opened = performance.now();
  const ids = (query.get('ids') ?? '').split(',').filter(Boolean);
  const status = h('p', { class: 'muted', role: 'status' }, 'Loading…');
  const metric = h('select', { id: 'compare-metric', 'aria-label': 'Metric' }, metrics.map((m) => h('option', { value: m.tag }, m.label)));
  const axis = h('select', { id: 'compare-axis', 'aria-label': 'Align by' }, h('option', { value: 'step' }, 'by step'), h('option', { value: 'epoch' }, 'by epoch'));
  const chartHost = h('div', { id: 'compare-chart', class: 'chart' });
  const table = h('div', { id: 'compare-settings', class: 'table-wrap' });
  main.replaceChildren(h('h1', {}, `Compare ${ids.length} jobs`), h('div', { class: 'chart-controls' }, metric, ' ', axis), chartHost, h('h2', {}, 'Settings that differ'), table, status);
  const abort = new AbortController();
  let chart: LineChart | undefined;
  let jobs: JobView[] = [];
  let data: { x: Float64Array; ys: Float64Array[] } = { x: new Float64Array(), ys: [] };
  let overview: Curve[] = [];
  const cache = new Map<string, Promise<string>>();
  const turns = limiter(4);
  let turn = 0;
  let zoomTurn = 0;
  let zoomAbort = new AbortController(); // the latest zoom's requests: a newer zoom or choice cancels them, freeing their places
  abort.signal.addEventListener('abort', () => zoomAbort.abort());
  /** A new zoom turn: the last one's requests, queued or in flight, are cancelled (the limiter's places go to this one). */
  function nextZoom() {
    zoomAbort.abort();
    zoomAbort = new AbortController();
    if (abort.signal.aborted) zoomAbort.abort();
    return { mine: ++zoomTurn, signal: zoomAbort.signal };
  }
  const points = chartPoints(chartHost.clientWidth);
  const stepsPerEpoch = (job: JobView) => job.totalSteps / Math.max(1, job.hyperparameters.epochs);

  /** A job's columns of one tag, fetched once; a failed fetch is forgotten, so choosing the metric again retries it. */
  function columnsOf(id: string, tag: string) {
    const key = `${id} ${tag}`;
    let text = cache.get(key);
    if (!text) {
      text = turns(() => api.historyColumns(id, [tag], abort.signal, { points }));
      cache.set(key, text);
      text.catch(() => cache.delete(key));
    }
    return text;
  }

  async function draw() {
    const mine = ++turn; // a later choice wins, whichever answer arrives last
    nextZoom(); // and a zoom's detail of the last choice is not wanted any more
    const tag = metric.value;
    const byEpoch = axis.value === 'epoch';
    status.textContent = 'Loading…';
    const started = performance.now();
    const timings = { fetchedMs: 0, parseMs: 0, alignMs: 0 };
    try {
      const curves = await Promise.all(jobs.map(async (job) => {
        const text = await columnsOf(job.id, tag);
        timings.fetchedMs = performance.now() - opened;
        const t = performance.now();
        const curve = parseColumns(text, [tag], stepsPerEpoch(job)).get(tag)!;
        timings.parseMs += performance.now() - t;
        return curve;
      }));
      if (mine !== turn) return;
      nextZoom(); // a zoom of the chart this one replaces is not wanted, even if its rows arrive later
      const t = performance.now();
      overview = curves;
      data = align(curves, byEpoch);
      timings.alignMs = performance.now() - t;
      probe.compare = { ...probe.compare, points: data.x.length, overviewPoints: data.x.length, zoomDetailMs: undefined };
      chart?.destroy();
      chart = new LineChart(chartHost, {
        title: metrics.find((m) => m.tag === tag)!.label,
        x: byEpoch ? 'epoch' : 'step',
        series: jobs.map((job, i) => ({ label: fmt.short(job.id), color: colorOf(i), points: tag.startsWith('epoch/') })),
        log: tag === 'step/loss' || tag === 'step/learning_rate',
        height: 320,
      }, () => data);
      chart.onZoom = (range) => void refine(range, tag, byEpoch);
      // For the browser test: ms from opening the page to the first drawing, and from the last choice to its drawing.
      chart.onDrawn = () => {
        status.textContent = '';
        const w = window as unknown as { compareOpenedMs?: number; compareDrawnMs?: number };
        w.compareOpenedMs ??= performance.now() - opened;
        w.compareDrawnMs = performance.now() - started;
        probe.compare = { ...probe.compare, ...timings, drawnMs: performance.now() - opened };
      };
    } catch (e) {
      if (!abort.signal.aborted && mine === turn) status.textContent = e instanceof ApiError ? e.describe().join('; ') : String(e);
    }
  }

  /**
   * A zoom to x0..x1 (steps, or epochs): each job's rows of those steps fetched again at the chart's resolution and
   * spliced into its overview; back to the whole run (null), the overview alone. Per-epoch metrics are whole already.
   */
  async function refine(range: [number, number] | null, tag: string, byEpoch: boolean) {
    const { mine, signal } = nextZoom();
    const base = overview; // the overview this zoom refines, whatever is drawn by the time its rows arrive
    if (!range || !tag.startsWith('step/')) {
      if (!range) {
        data = align(overview, byEpoch);
        chart?.invalidate();
      }
      return;
    }
    const started = performance.now();
    const spans = jobs.map((job) => {
      const scale = byEpoch ? stepsPerEpoch(job) : 1;
      return [Math.max(0, Math.floor(range[0] * scale)), Math.max(0, Math.ceil(range[1] * scale))] as const;
    });
    try {
      const curves = await Promise.all(jobs.map(async (job, i) => {
        const [fromStep, toStep] = spans[i];
        // Downsampled with every step in it already (a bucket a step wide): nothing finer to fetch.
        if (job.step < Math.floor((points + 1) / 2)) return base[i];
        // A zoom overtaken while this waited for a place gives it up at once (fetch rejects an aborted signal).
        const text = await turns(() => api.historyColumns(job.id, [tag], signal, { fromStep, toStep, points }));
        return splice(base[i], parseColumns(text, [tag], stepsPerEpoch(job)).get(tag)!, fromStep, toStep);
      }));
      if (mine !== zoomTurn) return;
      data = align(curves, byEpoch);
      chart?.invalidate();
      probe.compare = { ...probe.compare, points: data.x.length, zoomDetailMs: performance.now() - started };
    } catch (e) {
      if (!abort.signal.aborted && mine === zoomTurn) status.textContent = e instanceof ApiError ? e.describe().join('; ') : String(e);
    }
  }

  async function load() {
    // The histories need only the ids: asked for now, they arrive while the views are being read.
    for (const id of ids) columnsOf(id, metric.value).catch(() => undefined);
    try {
      const comparison = await api.compare(ids);
      probe.compare = { ...probe.compare, viewsMs: performance.now() - opened };
      jobs = comparison.jobs;
      table.replaceChildren(h('table', { class: 'compare' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Setting'),
          jobs.map((job, i) => h('th', { scope: 'col' }, h('span', { class: 'swatch', style: `background:${colorOf(i)}` }), ' ',
            h('a', { href: `#/jobs/${job.id}` }, fmt.short(job.id)))))),
        h('tbody', {}, comparison.differences.length === 0
          ? h('tr', {}, h('td', { colspan: jobs.length + 1 }, 'The jobs were asked for the same settings.'))
          : comparison.differences.map((d) => h('tr', {}, h('th', { scope: 'row' }, d.path),
            d.values.map((v) => h('td', { class: 'num' }, v === null || v === undefined ? '–' : typeof v === 'object' ? JSON.stringify(v) : String(v))))))));
      await draw();
    } catch (e) {
      if (!abort.signal.aborted) status.textContent = e instanceof ApiError ? e.describe().join('; ') : String(e);
    }
  }

  metric.addEventListener('change', () => void draw());
  axis.addEventListener('change', () => void draw());
  void load();
  return { dispose: () => { abort.abort(); chart?.destroy(); } };
}
