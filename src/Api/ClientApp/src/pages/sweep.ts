import { api, ApiError } from '../api';
import { LineChart, type LineSpec } from '../charts';
import { align, chartPoints, limiter, parseColumns, type Curve } from '../curves';
import { fmt, h, nodes, type Page } from '../dom';
import { dimensionAxis, goodness, ParallelPlot, ramp, valueAxis, type ParallelLine } from '../parallel';
import { probe } from '../probe';
import { Column } from '../series';
import { LiveJobs, type LinkStatus } from '../stream';
import { formatMetric, isOpen, formatParam, shortPath, stopNote, sweepMetrics, trialColor, trialsToDraw } from '../sweeps';
import { finished, num, trialStatuses, type StreamEvent, type SweepLeaderboard, type SweepMetricName, type SweepTrial, type SweepView } from '../types';

/** The most trials whose curves are drawn, besides the active ones: each drawn trial's history is fetched. */
const maxDrawn = 20;

/** A curve that grows: steps, epochs and values in growable columns. */
class Points {
  steps = new Column(256);
  epochs = new Column(256);
  values = new Column(256);

  push(step: number, epoch: number, value: number) {
    this.steps.push(step);
    this.epochs.push(epoch);
    this.values.push(value);
  }

  fill(curve: Curve) {
    this.steps = new Column(Math.max(256, curve.values.length * 2));
    this.epochs = new Column(Math.max(256, curve.values.length * 2));
    this.values = new Column(Math.max(256, curve.values.length * 2));
    for (let i = 0; i < curve.values.length; i++) this.push(curve.steps[i], curve.epochs[i], curve.values[i]);
  }

  view(): Curve {
    return { steps: this.steps.view(), epochs: this.epochs.view(), values: this.values.view() };
  }
}

/**
 * A drawn trial's curves — its loss each step and the sweep's metric each epoch — from its history, then (while it
 * trains) from the hub. `state`: loading its history; live (the hub follows it); done (read after it ended); failed
 * (read again at the next refresh).
 */
class TrialCurves {
  readonly loss = new Points();
  readonly metric = new Points();
  state: 'loading' | 'live' | 'done' | 'failed' = 'loading';

  constructor(readonly index: number, readonly jobId: string) {}

  get lastStep() {
    return this.loss.steps.length > 0 ? this.loss.steps.last : 0;
  }

  fill(text: string, lossTag: string, metricTag: string) {
    const curves = parseColumns(text, [lossTag, metricTag], 0);
    this.loss.fill(curves.get(lossTag)!);
    this.metric.fill(curves.get(metricTag)!);
  }

  /** Live events after the history: a step past the last one held adds a loss point, an epoch a metric point at it. */
  add(events: StreamEvent[], field: SweepMetricName): boolean {
    let added = false;
    for (const e of events) {
      if (e.kind === 'step' && typeof e.step === 'number' && e.step > this.lastStep) {
        this.loss.push(e.step, e.epoch ?? 0, num(e.loss));
        added = true;
      } else if (e.kind === 'epoch' && typeof e.epoch === 'number' && e[field] !== undefined && e[field] !== null
        && !(this.metric.epochs.length > 0 && e.epoch <= this.metric.epochs.last)) {
        this.metric.push(this.lastStep, e.epoch, num(e[field]));
        added = true;
      }
    }
    return added;
  }
}

/**
 * #/sweeps/{id}: a sweep's trials — every drawn trial's loss and metric curves overlaid (a colour each, the best
 * thicker; the active ones live over the hub), a parallel-coordinates plot of the settings against the metric, and
 * the leaderboard, with why each stopped trial stopped. Cancel while it runs; save the best trial's model.
 */
export function sweepPage(main: HTMLElement, id: string, options: { readOnly: boolean }): Page {
  let disposed = false;
  let sweep: SweepView | undefined;
  let board: SweepLeaderboard | undefined;
  const curves = new Map<number, TrialCurves>();
  let shown: SweepTrial[] = [];
  let leftOut = 0;
  let timer = 0;
  let refreshing: Promise<void> | undefined;
  let link: LinkStatus = 'offline';
  const abort = new AbortController();
  const turns = limiter(4);

  const title = h('h1', {}, `Sweep ${fmt.short(id)}`);
  const badge = h('span', { id: 'sweep-state', class: 'badge' }, '…');
  const linkBadge = h('span', { id: 'sweep-link', class: 'link', role: 'status' });
  const summary = h('p', { id: 'sweep-summary', class: 'summary' });
  const waiting = h('p', { id: 'sweep-waiting', class: 'small', hidden: true });
  const cancel = h('button', { type: 'button', id: 'sweep-cancel', class: 'danger', disabled: true }, 'Cancel sweep');
  const modelName = h('input', { id: 'best-model-name', type: 'text', maxlength: 200, required: true });
  const saveBest = h('button', { type: 'submit', id: 'save-best', disabled: true }, 'Save best as model');
  const saveForm = h('form', { id: 'save-best-form', class: 'save-best' },
    h('label', { for: 'best-model-name', class: 'visually-hidden' }, 'Name of the model'), modelName, saveBest);
  const controlStatus = h('p', { id: 'sweep-status', class: 'small', role: 'status' });
  const drawnNote = h('span', { id: 'drawn-note' });
  const drawAll = h('button', { type: 'button', id: 'draw-all', hidden: true }, 'Draw all');
  let drawEvery = false; // a person's choice: every started trial's curves, not only the best and the active
  const lossHost = h('div', { id: 'sweep-loss-chart', class: 'chart' });
  const metricHost = h('div', { id: 'sweep-metric-chart', class: 'chart' });
  const parallelHost = h('div', { id: 'sweep-parallel', class: 'parallel' });
  const parallelKey = h('p', { id: 'parallel-key', class: 'small muted' });
  const boardHost = h('div', { id: 'leaderboard', class: 'table-wrap' });
  const message = h('p', { id: 'sweep-message', class: 'muted', role: 'status' }, 'Loading…');
  main.replaceChildren(...nodes(
    h('div', { class: 'heading' }, title, badge, linkBadge),
    summary,
    waiting,
    !options.readOnly && h('div', { class: 'controls', role: 'group', 'aria-label': 'Sweep controls' }, cancel, saveForm),
    controlStatus,
    message,
    h('section', { 'aria-labelledby': 'curves-h' },
      h('h2', { id: 'curves-h' }, 'Curves'),
      h('p', { class: 'small muted' }, drawnNote, ' ', drawAll),
      h('p', { class: 'small muted' }, 'One colour per trial (as in the leaderboard); the best trial is drawn thickest. Drag to zoom, double-click to see everything.'),
      h('div', { class: 'charts' }, lossHost, metricHost)),
    h('section', { 'aria-labelledby': 'parallel-h' },
      h('h2', { id: 'parallel-h' }, 'Settings against the metric'),
      parallelHost, parallelKey),
    h('section', { 'aria-labelledby': 'board-h' }, h('h2', { id: 'board-h' }, 'Leaderboard'), boardHost)));

  const plot = new ParallelPlot(parallelHost);
  const live = new LiveJobs(onLive, onStale, (status) => { link = status; renderLink(); });

  // --- curves --------------------------------------------------------------------------------------------------
  let lossChart: LineChart | undefined;
  let metricChart: LineChart | undefined;
  let chartsKey = '';
  let version = 0;
  let lossData: ReturnType<typeof align> = { x: new Float64Array(), ys: [] };
  let metricData: ReturnType<typeof align> = { x: new Float64Array(), ys: [] };
  let lossFor = -1;
  let metricFor = -1;
  let drawPending = 0;
  /** The drawn trials in series order: by index, the best last (drawn on top). */
  let order: SweepTrial[] = [];
  const empty: Curve = { steps: new Float64Array(), epochs: new Float64Array(), values: new Float64Array() };

  const lossSource = () => {
    if (lossFor !== version) {
      lossData = align(order.map((t) => curves.get(t.index)?.loss.view() ?? empty), false);
      lossFor = version;
    }
    return lossData;
  };
  const metricSource = () => {
    if (metricFor !== version) {
      metricData = align(order.map((t) => curves.get(t.index)?.metric.view() ?? empty), true);
      metricFor = version;
    }
    return metricData;
  };

  function buildCharts() {
    if (!sweep) return;
    const best = sweep.best?.index;
    order = [...shown.filter((t) => t.index !== best), ...shown.filter((t) => t.index === best)];
    const key = `${order.map((t) => t.index).join(',')}|${best}`;
    if (key === chartsKey) return;
    chartsKey = key;
    version++;
    lossChart?.destroy();
    metricChart?.destroy();
    const metric = sweepMetrics[sweep.metric] ?? sweepMetrics.validationAccuracy;
    const series: LineSpec[] = order.map((t) => ({
      label: t.index === best ? `trial ${t.index} (best)` : `trial ${t.index}`,
      color: trialColor(t.index),
      width: t.index === best ? 3.5 : 1.25,
    }));
    lossChart = new LineChart(lossHost, { title: 'Training loss (each step)', x: 'step', series, log: true, height: 300 }, lossSource);
    metricChart = new LineChart(metricHost, {
      title: `${metric.label} (each epoch)`, x: 'epoch', height: 260,
      series: series.map((s) => ({ ...s, points: true })),
      format: metric.accuracy ? (v) => `${(v * 100).toFixed(1)}%` : undefined,
    }, metricSource);
  }

  /** Curves changed: redrawn at once, or (live) at most twice a second, as a trial's steps arrive many times a second. */
  function changed(fromLive: boolean) {
    version++;
    if (fromLive) {
      if (!drawPending) drawPending = window.setTimeout(invalidateCharts, 500);
    } else {
      invalidateCharts();
    }
  }

  function invalidateCharts() {
    drawPending = 0;
    lossChart?.invalidate();
    metricChart?.invalidate();
    publishProbe();
  }

  /** Reads a trial's history (the hub follows it from there while it trains), or again once it has ended. */
  async function load(t: SweepTrial, c: TrialCurves) {
    c.state = 'loading';
    const metric = sweepMetrics[sweep!.metric] ?? sweepMetrics.validationAccuracy;
    try {
      // The job's last seq is read before its history, so following from there misses nothing (a step read twice is dropped).
      const job = isOpen(t.status) ? await api.job(c.jobId) : undefined;
      // An ended trial's history downsampled to what the chart draws (about two rows per pixel column, spikes kept);
      // a trial still open comes whole, so the steps the hub then adds join it without a gap.
      const range = job ? {} : { points: chartPoints(main.clientWidth) };
      const text = await turns(() => api.historyColumns(c.jobId, ['step/loss', metric.tag], abort.signal, range));
      if (disposed || curves.get(t.index) !== c) return;
      c.fill(text, 'step/loss', metric.tag);
      if (job && !finished(job.state)) {
        c.state = 'live';
        live.follow(c.jobId, job.lastSeq, job.attempt);
      } else {
        c.state = 'done';
      }
      changed(false);
    } catch {
      if (!disposed && curves.get(t.index) === c) c.state = 'failed'; // read again at the next refresh
    }
  }

  function onLive(jobId: string, events: StreamEvent[]) {
    const c = [...curves.values()].find((x) => x.jobId === jobId);
    if (!c || c.state !== 'live' || !sweep) return;
    if (c.add(events, sweep.metric)) changed(true);
    if (events.some((e) => e.kind === 'state' && e.state && finished(e.state))) refreshSoon(); // its status, value, the next trial
  }

  function onStale(jobId: string) {
    const c = [...curves.values()].find((x) => x.jobId === jobId);
    if (c) c.state = 'failed';
    refreshSoon();
  }

  /** The drawn trials follow the leaderboard: new ones read, ended ones read once more, the others forgotten. */
  function syncCurves() {
    const picked = trialsToDraw(board!.ranked.map((r) => r.trial), drawEvery ? Number.MAX_SAFE_INTEGER : maxDrawn);
    shown = picked.shown;
    leftOut = picked.leftOut;
    const keep = new Set(shown.map((t) => t.index));
    for (const [index, c] of curves) {
      if (keep.has(index)) continue;
      live.unfollow(c.jobId);
      curves.delete(index);
    }
    for (const t of shown) {
      let c = curves.get(t.index);
      if (!c) {
        c = new TrialCurves(t.index, t.jobId!);
        curves.set(t.index, c);
        void load(t, c);
      } else if (c.state === 'failed' || (c.state === 'live' && !isOpen(t.status))) {
        live.unfollow(c.jobId); // ended: its whole history once more, in case the stream missed its last events
        void load(t, c);
      }
    }
    const started = board!.ranked.filter((r) => r.trial.jobId).length;
    drawnNote.textContent = started === 0
      ? 'No trial has started yet.'
      : leftOut > 0
        ? `Curves of ${shown.length} of the ${started} trials that have started: the best ${maxDrawn} and those training now (${leftOut} left out; the leaderboard has them all).`
        : `Curves of all ${started} trials that have started.`;
    drawAll.hidden = !drawEvery && leftOut === 0;
    drawAll.textContent = drawEvery ? `Draw only the best ${maxDrawn} and those training` : `Draw all ${started}`;
  }

  // --- the parallel-coordinates plot ---------------------------------------------------------------------------
  function drawParallel() {
    if (!sweep || !board) return;
    const s = sweep;
    const dims = Array.isArray(s.settings?.searchSpace) ? s.settings.searchSpace.filter((d) => typeof d?.path === 'string') : [];
    const trials = board.ranked.map((r) => r.trial);
    const metric = sweepMetrics[s.metric] ?? sweepMetrics.validationAccuracy;
    const maximize = s.goal !== 'minimize';
    const values = trials.map((t) => t.value);
    const measured = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    const lo = Math.min(...measured);
    const hi = Math.max(...measured);
    const axes = [
      ...dims.map((d) => dimensionAxis(d, trials.map((t) => t.params?.[d.path]))),
      valueAxis(`${metric.label} ${maximize ? '↑' : '↓'}`, s.metric, values, (v) => formatMetric(s.metric, v)),
    ];
    const lines: ParallelLine[] = trials.map((t) => {
      const has = typeof t.value === 'number' && Number.isFinite(t.value);
      return {
        trial: t.index,
        values: [...dims.map((d) => t.params?.[d.path]), t.value],
        color: has ? ramp(goodness(t.value!, lo, hi, maximize)) : '#888',
        best: t.index === s.best?.index,
        pending: !has,
      };
    });
    plot.draw(axes, lines);
    parallelKey.replaceChildren(
      'Each line is a trial, through its settings to its ', metric.label.toLowerCase(), ' (the last axis; ', maximize ? 'higher' : 'lower', ' is better). Colour: ',
      h('span', { class: 'ramp', 'aria-hidden': 'true' }), ' from the worst value to the best; dashed grey: no value yet; outlined: the best trial. ',
      'Log axes for log-uniform settings; a choice’s values evenly spaced.');
  }

  // --- header, controls and leaderboard ------------------------------------------------------------------------
  function renderLink() {
    const following = live.following.size > 0;
    linkBadge.textContent = following ? (link === 'live' ? '● live' : link) : '';
    linkBadge.className = `link ${following ? link : ''}`;
  }

  function render() {
    const s = sweep!;
    const metric = sweepMetrics[s.metric] ?? sweepMetrics.validationAccuracy;
    title.textContent = s.name ? `Sweep “${s.name}”` : `Sweep ${fmt.short(id)}`;
    badge.textContent = s.state;
    badge.className = `badge ${String(s.state).toLowerCase()}`;
    const counts = trialStatuses.filter((st) => (s.counts?.[st] ?? 0) > 0).map((st) => `${s.counts[st]} ${st.toLowerCase()}`).join(', ');
    summary.replaceChildren(
      `${s.strategy} · ${fmt.int(s.trials)} trials (${counts || 'none yet'}) · ${s.parallelism} at a time · ${metric.label.toLowerCase()}, `,
      `${s.goal === 'minimize' ? 'lower' : 'higher'} is better · ${fmt.int(s.steps)} steps · best: `,
      s.best ? h('strong', { id: 'sweep-best' }, `trial ${s.best.index}, ${formatMetric(s.metric, s.best.value)}`) : 'none yet',
      ...nodes(s.rangeTestJobId && [' · learning rate from a ', h('a', { href: `#/jobs/${s.rangeTestJobId}` }, 'range test'),
        typeof s.suggestedLearningRate === 'number' ? `: ${formatParam(s.suggestedLearningRate)}` : ' (running)']));
    const note = s.error ?? s.waiting;
    waiting.hidden = !note;
    waiting.textContent = note ?? '';
    waiting.className = s.error ? 'small error' : 'small muted';
    cancel.disabled = s.state !== 'Running';
    saveBest.disabled = !s.best;
    saveBest.title = s.best ? `Saves trial ${s.best.index}'s model spec as a model` : 'No trial has a value yet';
    if (!modelName.value) modelName.value = `${s.name ?? `sweep ${fmt.short(id)}`} best`.slice(0, 200);
    message.textContent = '';
    renderBoard();
    syncCurves();
    buildCharts();
    drawParallel();
    renderLink();
    publishProbe();
  }

  function renderBoard() {
    const s = sweep!;
    const dims = Array.isArray(s.settings?.searchSpace) ? s.settings.searchSpace.filter((d) => typeof d?.path === 'string') : [];
    const metric = sweepMetrics[s.metric] ?? sweepMetrics.validationAccuracy;
    const asha = s.strategy === 'asha';
    boardHost.replaceChildren(h('table', { class: 'leaderboard' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Rank'), h('th', { scope: 'col' }, 'Trial'),
        dims.map((d) => h('th', { scope: 'col', title: d.path }, shortPath(d.path))),
        h('th', { scope: 'col' }, metric.label), h('th', { scope: 'col' }, 'At epoch'), h('th', { scope: 'col' }, 'Status'),
        h('th', { scope: 'col' }, 'Stopped because'),
        asha && h('th', { scope: 'col' }, 'Rungs'))),
      h('tbody', {}, board!.ranked.map(({ rank, trial: t, rungs }) => {
        const why = stopNote(t);
        const status = String(t.status ?? '');
        return h('tr', { 'data-trial': t.index, class: t.index === s.best?.index ? 'best' : null },
          h('td', { class: 'num' }, rank),
          h('td', {}, h('span', { class: 'swatch', style: `background:${trialColor(t.index)}` }), ' ',
            t.jobId ? h('a', { href: `#/jobs/${t.jobId}`, title: `job ${t.jobId}` }, `#${t.index}`) : `#${t.index}`),
          dims.map((d) => h('td', { class: 'num' }, formatParam(t.params?.[d.path]))),
          h('td', { class: 'num value' }, formatMetric(s.metric, t.value)),
          h('td', { class: 'num' }, t.valueEpoch ?? '–'),
          h('td', {}, h('span', { class: `badge trial ${status.toLowerCase()}` }, status)),
          h('td', { class: 'small why', title: why }, why ?? ''),
          asha && h('td', { class: 'small' }, (rungs ?? []).map((r) =>
            `epoch ${r.epoch}: ${formatMetric(s.metric, r.value)}${r.waiting ? '' : r.cutoff === null || r.cutoff === undefined ? ' (first)' : ` vs cut ${formatMetric(s.metric, r.cutoff)}`} → ${r.waiting ? 'waiting' : r.continued ? 'went on' : 'stopped'}`).join('; ')));
      }))));
  }

  function publishProbe() {
    if (!sweep) return;
    probe.sweep = {
      id,
      state: sweep.state,
      trials: shown.map((t) => {
        const c = curves.get(t.index);
        return { index: t.index, jobId: t.jobId ?? '', lossPoints: c?.loss.values.length ?? 0, metricPoints: c?.metric.values.length ?? 0, lastStep: c?.lastStep ?? 0, state: c?.state ?? '' };
      }),
      leftOut,
      axes: plot.axes,
      lines: plot.placed,
    };
  }

  drawAll.addEventListener('click', () => {
    drawEvery = !drawEvery;
    if (!board) return;
    syncCurves();
    buildCharts();
    publishProbe();
  });

  cancel.addEventListener('click', async () => {
    if (!confirm('Cancel this sweep? No more trials start, and those training stop; what they trained is kept.')) return;
    controlStatus.className = 'small';
    controlStatus.textContent = 'Cancelling…';
    try {
      await api.cancelSweep(id);
      controlStatus.textContent = 'Cancelled: no more trials start; those that were training stop with the code sweep-cancelled.';
    } catch (err) {
      controlStatus.className = 'small error';
      controlStatus.textContent = err instanceof ApiError ? err.describe().join('; ') : String(err);
    }
    refreshSoon();
  });

  saveForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = modelName.value.trim();
    controlStatus.className = 'small';
    if (!name) {
      controlStatus.textContent = 'Name the model first.';
      return;
    }
    saveBest.disabled = true;
    controlStatus.textContent = 'Saving…';
    try {
      const model = await api.saveBestModel(id, name);
      controlStatus.dataset.model = model.id;
      controlStatus.textContent = `Saved the best trial's model as “${model.name}” (${fmt.int(model.parameters)} parameters): pick it under New job.`;
    } catch (err) {
      controlStatus.className = 'small error';
      controlStatus.textContent = err instanceof ApiError ? err.describe().join('; ') : String(err);
    } finally {
      saveBest.disabled = !sweep?.best;
    }
  });

  // --- refresh -------------------------------------------------------------------------------------------------
  function refreshSoon() {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void refresh(), 0);
  }

  async function refresh() {
    window.clearTimeout(timer);
    if (refreshing) return refreshing.then(() => refreshSoon());
    refreshing = (async () => {
      try {
        const [view, ranked] = await Promise.all([api.sweep(id, abort.signal), api.leaderboard(id, abort.signal)]);
        if (disposed) return;
        sweep = view;
        board = ranked;
        render();
      } catch (err) {
        if (disposed) return;
        if (!sweep && err instanceof ApiError && (err.status === 404 || err.status === 400)) {
          main.replaceChildren(h('h1', {}, 'Sweep not found'), h('p', {}, err.describe().join('; ')), h('a', { href: '#/sweeps' }, 'All sweeps'));
          disposed = true;
          return;
        }
        message.textContent = `${err instanceof ApiError ? err.describe().join('; ') : `The service is unreachable (${String(err)})`}; retrying.`;
      }
    })();
    await refreshing;
    refreshing = undefined;
    if (disposed) return;
    // Every two seconds while trials may still change (every five in a hidden tab); a drawn trial that failed to load is
    // read again at the next one.
    const settled = sweep && sweep.state !== 'Running' && !sweep.trialList.some((t) => isOpen(t.status) || t.status === 'Pending');
    const loading = [...curves.values()].some((c) => c.state === 'failed');
    if (!settled || loading) timer = window.setTimeout(() => void refresh(), document.hidden ? 5000 : 2000);
  }

  void refresh();
  return {
    dispose() {
      disposed = true;
      abort.abort();
      live.close();
      window.clearTimeout(timer);
      window.clearTimeout(drawPending);
      lossChart?.destroy();
      metricChart?.destroy();
      plot.destroy();
    },
  };
}
