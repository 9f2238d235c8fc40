import { api, ApiError } from '../api';
import { authFetch, problemOf } from '../auth';
import { HeatStrip, LineChart, palette, type Source } from '../charts';
import { copyField, fmt, h, nodes, type Page } from '../dom';
import { describeHyperparameters } from '../hyperparameters';
import { AuthedImages, download } from '../images';
import { describeThinning, JobData } from '../jobdata';
import { smooth } from '../series';
import { JobFollower, type LinkStatus } from '../stream';
import { finished, type JobView, type ShareCreated, type ShareView, type StreamEvent } from '../types';
import { probe } from '../probe';

export interface JobPageOptions {
  /** Charts, stats and pictures only: no controls, steering, predictions, snapshots, downloads or dataset samples. */
  readOnly: boolean;
  /** Opened with a share token (a banner says so). */
  shared: boolean;
  /** Leaves the shared view for the signed-in key's (when the tab holds a key too). */
  leaveShare?: () => void;
}

/**
 * One job, live: header (state, step, ETA, speed), controls, notices, and every chart, fed by the history and then
 * the stream. All data is kept; charts decimate when they draw. Read-only (a share link) it shows what is watched.
 */
export function jobPage(main: HTMLElement, id: string, options: JobPageOptions): Page {
  const { readOnly } = options;
  let disposed = false;
  const images = new AuthedImages();
  let tryUrl: string | undefined;
  const data = new JobData();
  let job: JobView | undefined;
  let link: LinkStatus = 'connecting';
  let smoothing = Number(localStorage.getItem('smoothing') ?? '0.6');
  let smoothed = new Float64Array(0);
  let smoothedFor = -1;
  const charts: LineChart[] = [];
  const strips = new Map<string, HeatStrip>();
  let layerChartsBuilt = false;
  let headerPending = false;
  let stripsTimer = 0;
  const pendingLatency: number[] = [];
  let historyLoaded = false;

  // --- page skeleton -------------------------------------------------------------------------------------------
  const title = h('h1', {}, `Job ${fmt.short(id)}`);
  const badge = h('span', { id: 'state', class: 'badge' }, '…');
  const linkBadge = h('span', { id: 'link', class: 'link', role: 'status' }, 'connecting');
  const stepText = h('span', { id: 'step' }, '0');
  const totalText = h('span', { id: 'total-steps' }, '');
  const epochText = h('span', { id: 'epoch' }, '–');
  const etaText = h('span', { id: 'eta' }, '–');
  const speedText = h('span', { id: 'speed' }, '–');
  const lossText = h('span', { id: 'loss' }, '–');
  const accText = h('span', { id: 'best-acc' }, '–');
  const progress = h('progress', { id: 'progress', max: 1, value: 0, 'aria-label': 'Progress' });
  const hpText = h('p', { id: 'hyperparameters', class: 'small muted' });
  const sweepOf = h('p', { id: 'job-sweep', class: 'small', hidden: true });
  const pause = h('button', { type: 'button', id: 'pause', disabled: true }, 'Pause');
  const resume = h('button', { type: 'button', id: 'resume', disabled: true }, 'Resume');
  const cancel = h('button', { type: 'button', id: 'cancel', class: 'danger', disabled: true }, 'Cancel');
  const finish = h('button', { type: 'button', id: 'finish', disabled: true, title: 'Early stop: end now and keep the model' }, 'Finish now');
  const weights = h('button', { type: 'button', id: 'weights', hidden: true }, 'Download weights');
  const historyCsv = h('button', { type: 'button', id: 'history-csv', title: 'Every stored value: step, epoch, time, tag, value' }, 'History (CSV)');
  const historyTensorBoard = h('button', { type: 'button', id: 'history-tensorboard', title: 'An event file for tensorboard --logdir: scalars and activation histograms' }, 'TensorBoard file');
  const shareToggle = h('button', { type: 'button', id: 'share', 'aria-expanded': 'false', 'aria-controls': 'share-panel' }, 'Share…');
  const steerLr = h('input', { id: 'steer-lr', type: 'number', step: 'any', min: 0, 'data-field': 'learningRate' });
  const steerMomentum = h('input', { id: 'steer-momentum', type: 'number', step: 'any', min: 0, max: 0.999, 'data-field': 'momentum' });
  const steerWd = h('input', { id: 'steer-wd', type: 'number', step: 'any', min: 0, 'data-field': 'weightDecay' });
  const steerReason = h('input', { id: 'steer-reason', type: 'text', maxlength: 200, placeholder: 'why (kept in the history)', 'data-field': 'reason' });
  const steerApply = h('button', { type: 'submit', id: 'steer-apply' }, 'Apply from the next step');
  const steerStatus = h('p', { class: 'small', role: 'status', id: 'steer-status' });
  const steerForm = h('form', { class: 'steer', id: 'steer', 'aria-label': 'Change hyperparameters' },
    h('div', { class: 'grid' },
      h('div', { class: 'field' }, h('label', { for: 'steer-lr' }, 'Learning rate'), steerLr),
      h('div', { class: 'field' }, h('label', { for: 'steer-momentum' }, 'Momentum'), steerMomentum),
      h('div', { class: 'field' }, h('label', { for: 'steer-wd' }, 'Weight decay'), steerWd),
      h('div', { class: 'field' }, h('label', { for: 'steer-reason' }, 'Reason'), steerReason)),
    steerApply, steerStatus);
  const controlStatus = h('p', { class: 'muted', role: 'status', id: 'control-status' });
  const notices = h('ul', { id: 'notices', class: 'notices', 'aria-live': 'polite' });
  const lossHost = h('div', { id: 'loss-chart', class: 'chart' });
  const slider = h('input', { id: 'smoothing', type: 'range', min: 0, max: 0.99, step: 0.01, value: smoothing });
  const sliderValue = h('output', { for: 'smoothing' }, smoothing.toFixed(2));
  const logToggle = h('input', { id: 'log-scale', type: 'checkbox', checked: localStorage.getItem('logLoss') === 'true' });
  const layerSection = h('div', { class: 'charts' });
  const stripHost = h('div', { class: 'strips' });
  const tryInput = h('input', { id: 'try-file', type: 'file', accept: 'image/png,image/jpeg' });
  const tryZone = h('label', { class: 'drop', for: 'try-file' }, 'Drop an image, or click to choose one', tryInput);
  const tryResult = h('div', { id: 'try-result', 'aria-live': 'polite' });
  const snapshotButton = h('button', { type: 'button', id: 'snapshot', disabled: true }, 'Take pictures now');
  const visualsHost = h('div', { id: 'visuals', class: 'visuals' });
  let probeImage = 0;
  let visualsStep = -1;
  const layerNote = h('p', { class: 'muted' }, 'Layer statistics appear with the first measurement (every “statsEvery” steps).');
  const thinNote = h('p', { id: 'thinned-note', class: 'small muted', hidden: true });

  const share = sharePanel();
  const leave = options.leaveShare;
  main.replaceChildren(...nodes(
    options.shared && h('p', { id: 'shared-banner', class: 'banner', role: 'note' },
      'Viewing a shared job (read-only).',
      leave && h('button', { type: 'button', id: 'leave-share', onclick: () => leave() }, 'Open with my key instead')),
    h('div', { class: 'heading' }, title, badge, linkBadge),
    h('p', { class: 'summary' },
      'Step ', stepText, totalText, ' · epoch ', epochText, ' · ETA ', etaText, ' · ', speedText, ' samples/s · loss ', lossText, ' · best val. acc. ', accText),
    progress,
    hpText,
    sweepOf,
    !readOnly && [
      h('div', { class: 'controls', role: 'group', 'aria-label': 'Job controls' }, pause, resume, finish, cancel, weights, historyCsv, historyTensorBoard, shareToggle),
      controlStatus,
      share.panel,
      h('details', { class: 'steer-box' }, h('summary', {}, 'Steer: change the learning rate, momentum or weight decay'), steerForm),
    ],
    h('section', { 'aria-labelledby': 'notices-h' }, h('h2', { id: 'notices-h' }, 'Alerts'), notices),
    h('section', { 'aria-labelledby': 'loss-h' },
      h('h2', { id: 'loss-h' }, 'Loss per step'),
      h('div', { class: 'chart-controls' },
        h('label', { for: 'smoothing' }, 'Smoothing '), slider, sliderValue,
        h('label', { class: 'check', for: 'log-scale' }, logToggle, ' Log scale'),
        h('span', { class: 'small muted' }, 'Drag to zoom, double-click to see the whole run.')),
      lossHost),
    h('section', { 'aria-labelledby': 'epoch-h' }, h('h2', { id: 'epoch-h' }, 'Per epoch'),
      h('div', { class: 'charts two' }, h('div', { id: 'acc-chart', class: 'chart' }), h('div', { id: 'epoch-loss-chart', class: 'chart' }))),
    h('section', { 'aria-labelledby': 'rate-h' }, h('h2', { id: 'rate-h' }, 'Learning rate and speed'),
      h('div', { class: 'charts two' }, h('div', { id: 'lr-chart', class: 'chart' }), h('div', { id: 'speed-chart', class: 'chart' }))),
    h('section', { 'aria-labelledby': 'layers-h' }, h('h2', { id: 'layers-h' }, 'Layers'), layerNote, thinNote, layerSection),
    !readOnly && h('section', { 'aria-labelledby': 'try-h' }, h('h2', { id: 'try-h' }, 'Try it'),
      h('p', { class: 'small muted' }, 'Drop a PNG or JPEG here, or pick one: it is resized to the model’s input and classified by the latest weights (final, or the last checkpoint).'),
      tryZone, tryResult),
    h('section', { 'aria-labelledby': 'sees-h' }, h('h2', { id: 'sees-h' }, 'What the network sees'),
      h('div', { class: 'chart-controls' }, !readOnly && snapshotButton, h('span', { id: 'visuals-status', class: 'small muted' }, 'Pictures come at every epoch’s end.')),
      h('div', { id: 'probes', class: 'thumbs', role: 'group', 'aria-label': 'Probe image' }),
      visualsHost),
    h('section', { 'aria-labelledby': 'dist-h' }, h('h2', { id: 'dist-h' }, 'Activation distributions'),
      h('p', { class: 'small muted' }, 'Each strip: one layer’s output histogram over time (left to right); darker and yellower = more outputs at that value.'),
      stripHost)));

  // --- charts --------------------------------------------------------------------------------------------------
  const s = data.steps;
  const lossSource: Source = () => {
    if (smoothedFor !== s.loss.length) {
      if (smoothed.length < s.loss.length) smoothed = new Float64Array(Math.max(1024, s.loss.length * 2));
      smooth(s.loss.view(), smoothing, smoothed);
      smoothedFor = s.loss.length;
    }
    return { x: s.step.view(), ys: [s.loss.view(), smoothed.subarray(0, s.loss.length)] };
  };
  const lossChart = new LineChart(lossHost, {
    title: 'Training loss (batch mean cross-entropy)', x: 'step', log: logToggle.checked, height: 280, markers: () => data.changes,
    series: [{ label: 'loss', color: 'rgba(78,121,167,0.35)', width: 1 }, { label: 'smoothed', color: palette[0], width: 2 }],
  }, lossSource);
  lossChart.onDrawn = () => {
    if (pendingLatency.length === 0) return;
    const now = Date.now();
    for (const t of pendingLatency) probe.latencies.push(now - t);
    pendingLatency.length = 0;
  };
  charts.push(lossChart);
  const e = data.epochs;
  charts.push(new LineChart(main.querySelector<HTMLElement>('#acc-chart')!, {
    title: 'Accuracy', x: 'epoch', format: (v) => `${(v * 100).toFixed(1)}%`,
    series: [{ label: 'train', color: palette[0], points: true }, { label: 'validation', color: palette[1], points: true }],
  }, () => ({ x: e.epoch.view(), ys: [e.trainAccuracy.view(), e.validationAccuracy.view()] })));
  charts.push(new LineChart(main.querySelector<HTMLElement>('#epoch-loss-chart')!, {
    title: 'Loss', x: 'epoch',
    series: [{ label: 'train', color: palette[0], points: true }, { label: 'validation', color: palette[1], points: true }],
  }, () => ({ x: e.epoch.view(), ys: [e.trainLoss.view(), e.validationLoss.view()] })));
  charts.push(new LineChart(main.querySelector<HTMLElement>('#lr-chart')!, {
    title: 'Learning rate', x: 'step', height: 180, markers: () => data.changes, series: [{ label: 'learning rate', color: palette[4] }],
  }, () => ({ x: s.step.view(), ys: [s.learningRate.view()] })));
  charts.push(new LineChart(main.querySelector<HTMLElement>('#speed-chart')!, {
    title: 'Samples per second', x: 'step', height: 180, series: [{ label: 'samples/s', color: palette[6] }],
  }, () => ({ x: s.step.view(), ys: [s.samplesPerSecond.view()] })));

  /** A range test's curve: loss against learning rate (log axis), the suggested rate marked once known. */
  function buildRangeTestChart() {
    if (job?.sanity?.check !== 'learningRateRangeTest' || main.querySelector('#range-chart')) return;
    const host = h('div', { id: 'range-chart', class: 'chart' });
    lossHost.closest('section')!.append(h('h3', {}, 'Learning-rate range test'), host);
    charts.push(new LineChart(host, {
      title: 'Loss against learning rate (both axes logarithmic)', x: 'learning rate', logX: true, log: true, height: 280,
      markers: () => (data.sanity?.suggested ? [data.sanity.suggested] : []),
      series: [{ label: 'loss', color: 'rgba(78,121,167,0.35)', width: 1 }, { label: 'smoothed', color: palette[0], width: 2 }],
    }, () => {
      const { ys } = lossSource();
      return { x: s.learningRate.view(), ys };
    }));
  }

  function buildLayerCharts() {
    if (layerChartsBuilt || data.layers.size === 0) return;
    layerChartsBuilt = true;
    layerNote.remove();
    const layers = [...data.layers.values()];
    const params = [...data.parameters.values()];
    const x = () => layers[0].step.view();
    const add = (title: string, ys: () => Float64Array[], names: string[], extra: Partial<ConstructorParameters<typeof LineChart>[1]> = {}, px = x) => {
      const host = h('div', { class: 'chart' });
      layerSection.append(host);
      charts.push(new LineChart(host, {
        title, x: 'step', height: 240, ...extra,
        series: names.map((n, i) => ({ label: n, color: palette[i % palette.length], dash: i >= palette.length ? [4, 3] : undefined })),
      }, () => ({ x: px(), ys: ys() })));
    };
    add('Activation mean', () => layers.map((l) => l.mean.view()), layers.map((l) => l.name));
    add('Activation std', () => layers.map((l) => l.std.view()), layers.map((l) => l.name));
    add('Fraction of zeros (dead or inactive ReLUs)', () => layers.map((l) => l.zeroFraction.view()), layers.map((l) => l.name), { format: (v) => `${(v * 100).toFixed(0)}%`, yRange: [0, 1] });
    if (params.length > 0) {
      const px = () => params[0].step.view();
      add('Update / weight ratio (healthy ≈ 1e-3; shaded 1e-4 … 1e-2)', () => params.map((p) => p.updateRatio.view()), params.map((p) => p.name),
        { log: true, band: { from: 1e-4, to: 1e-2, mark: 1e-3 } }, px);
      add('Gradient norm', () => params.map((p) => p.gradNorm.view()), params.map((p) => p.name), { log: true }, px);
    }
    for (const l of layers) {
      const strip = new HeatStrip(stripHost, `${l.name} (${l.kind})`);
      strip.onVisible = () => drawStrip(l.name);
      strips.set(l.name, strip);
    }
  }

  function drawStrips() {
    stripsTimer = 0;
    for (const [name, strip] of strips) if (strip.isVisible) drawStrip(name);
  }

  function drawStrip(name: string) {
    const l = data.layers.get(name)!;
    strips.get(name)!.draw(l.histograms, l.min.view(), l.max.view(), l.step.view());
  }

  // --- header and controls -------------------------------------------------------------------------------------
  function renderHeader() {
    headerPending = false;
    const state = data.state ?? job?.state;
    badge.textContent = state ?? '…';
    badge.className = `badge ${(state ?? '').toLowerCase()}`;
    linkBadge.textContent = link === 'live' ? '● live' : link;
    linkBadge.className = `link ${link}`;
    const step = s.step.length > 0 ? s.step.last : job?.step ?? 0;
    stepText.textContent = fmt.int(step);
    const total = job?.totalSteps ?? 0;
    totalText.textContent = total ? ` / ${fmt.int(total)}` : '';
    progress.value = total ? Math.min(1, step / total) : 0;
    epochText.textContent = s.epoch.length > 0 ? String(s.epoch.last) : '–';
    const speed = recentSpeed();
    speedText.textContent = fmt.num(speed, 3);
    etaText.textContent = state === 'Running' && speed > 0 && job ? fmt.duration(((total - step) * job.hyperparameters.batchSize) / speed) : '–';
    lossText.textContent = fmt.num(s.loss.last);
    let best = NaN;
    for (const v of e.validationAccuracy.view()) if (!(v <= best)) best = v;
    accText.textContent = fmt.pct(Number.isNaN(best) ? job?.bestValidationAccuracy : best);
    pause.disabled = state !== 'Running';
    snapshotButton.disabled = state !== 'Running' && state !== 'Paused';
    finish.disabled = state !== 'Running' && state !== 'Paused';
    steerApply.disabled = !state || finished(state);
    steerMomentum.disabled = job?.hyperparameters.optimizer !== 'sgd';
    const hpLine = job ? describeHyperparameters(job.hyperparameters) : '';
    if (hpText.textContent !== hpLine) hpText.textContent = hpLine;
    if (job && !steerForm.dataset.filled) {
      steerForm.dataset.filled = 'true';
      steerLr.value = String(job.hyperparameters.learningRate);
      steerMomentum.value = String(job.hyperparameters.momentum);
      steerWd.value = String(job.hyperparameters.weightDecay);
    }
    resume.disabled = state !== 'Paused';
    cancel.disabled = !state || finished(state);
    weights.hidden = state !== 'Succeeded' || job?.sanity?.check === 'learningRateRangeTest'; // a range test keeps no model
    probe.job = { id, seq: data.seq, steps: s.step.length, lastStep: step, gaps: data.gaps, repeatedSteps: data.repeatedSteps, state: state ?? '', link };
  }

  /** Mean samples/s over the last 20 steps: single steps are noisy. */
  function recentSpeed() {
    const n = s.samplesPerSecond.length;
    let sum = 0;
    let count = 0;
    for (let i = Math.max(0, n - 20); i < n; i++) {
      const v = s.samplesPerSecond.get(i);
      if (Number.isFinite(v)) { sum += v; count++; }
    }
    return count ? sum / count : NaN;
  }

  function scheduleHeader() {
    if (headerPending) return;
    headerPending = true;
    requestAnimationFrame(renderHeader);
  }

  async function control(action: 'pause' | 'resume' | 'cancel' | 'finish') {
    if (action === 'cancel' && !confirm('Cancel this job for good? Its progress is kept in the history, but it cannot be resumed.')) return;
    if (action === 'finish' && !confirm('Finish now? The job ends here as Succeeded and keeps the model it has.')) return;
    controlStatus.textContent = `${action}…`;
    try {
      await api.control(id, action);
      controlStatus.textContent = '';
    } catch (err) {
      controlStatus.textContent = err instanceof ApiError ? err.describe().join('; ') : String(err);
    }
  }
  async function save(path: string, fallbackName: string) {
    controlStatus.textContent = 'Downloading…';
    try {
      controlStatus.textContent = `Saved ${await download(path, fallbackName)}.`;
    } catch (err) {
      controlStatus.textContent = String(err instanceof Error ? err.message : err);
    }
  }
  weights.addEventListener('click', () => void save(`jobs/${id}/weights`, `job-${id}.dat`));
  historyCsv.addEventListener('click', () => void save(`jobs/${id}/history?format=csv`, `job-${id}-history.csv`));
  historyTensorBoard.addEventListener('click', () => void save(`jobs/${id}/history?format=tensorboard`, `events.out.tfevents.job-${id}`));
  pause.addEventListener('click', () => void control('pause'));
  resume.addEventListener('click', () => void control('resume'));
  cancel.addEventListener('click', () => void control('cancel'));
  finish.addEventListener('click', () => void control('finish'));
  steerForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!job) return;
    const change: { learningRate?: number; momentum?: number; weightDecay?: number; reason?: string } = {};
    const hp = job.hyperparameters;
    if (steerLr.value !== '' && steerLr.valueAsNumber !== hp.learningRate) change.learningRate = steerLr.valueAsNumber;
    if (!steerMomentum.disabled && steerMomentum.value !== '' && steerMomentum.valueAsNumber !== hp.momentum) change.momentum = steerMomentum.valueAsNumber;
    if (steerWd.value !== '' && steerWd.valueAsNumber !== hp.weightDecay) change.weightDecay = steerWd.valueAsNumber;
    if (steerReason.value.trim()) change.reason = steerReason.value.trim();
    steerForm.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
    steerStatus.className = 'small';
    steerStatus.textContent = 'Sending…';
    try {
      job = await api.steer(id, change);
      steerStatus.textContent = `Applied from the next step: learning rate ${job.hyperparameters.learningRate}, momentum ${job.hyperparameters.momentum}, weight decay ${job.hyperparameters.weightDecay}.`;
      steerReason.value = '';
    } catch (err) {
      steerStatus.className = 'small error';
      steerStatus.textContent = err instanceof ApiError ? err.describe().join('; ') : String(err);
      if (err instanceof ApiError) {
        for (const field of Object.keys(err.problem.errors ?? {})) steerForm.querySelector(`[data-field="${field}"]`)?.setAttribute('aria-invalid', 'true');
      }
    }
  });
  slider.addEventListener('input', () => {
    smoothing = slider.valueAsNumber;
    sliderValue.textContent = smoothing.toFixed(2);
    localStorage.setItem('smoothing', String(smoothing));
    smoothedFor = -1;
    lossChart.invalidate();
  });
  logToggle.addEventListener('change', () => {
    localStorage.setItem('logLoss', String(logToggle.checked));
    lossChart.setLog(logToggle.checked);
  });

  // --- share links ---------------------------------------------------------------------------------------------
  /** Read-only links to this job: made with an expiry, shown once with a Copy button, listed with Revoke buttons. */
  function sharePanel() {
    const expiry = h('select', { id: 'share-expiry' },
      ([[1, '1 hour'], [24, '1 day'], [168, '7 days'], [720, '30 days']] as const).map(([hours, text]) => h('option', { value: hours, selected: hours === 24 }, text)));
    const create = h('button', { type: 'submit', id: 'share-create', class: 'primary' }, 'Create link');
    const url = h('input', { id: 'share-url', type: 'text', readonly: true, spellcheck: 'false', 'aria-describedby': 'share-once' });
    const copy = h('button', { type: 'button', id: 'share-copy' }, 'Copy');
    const made = h('div', { id: 'share-made', hidden: true },
      h('div', { class: 'field' }, h('label', { for: 'share-url' }, 'Link'), h('div', { class: 'share-url' }, url, copy)),
      h('p', { id: 'share-once', class: 'small muted' }, 'Shown this once: anyone with the link can watch this job until it expires or is revoked.'));
    const status = h('p', { id: 'share-status', class: 'small', role: 'status' });
    const rows = h('tbody');
    const form = h('form', { id: 'share-form', class: 'share-form' },
      h('div', { class: 'field' }, h('label', { for: 'share-expiry' }, 'Expires after'), expiry), create);
    const panel = h('section', { id: 'share-panel', class: 'share-panel', hidden: true, 'aria-labelledby': 'share-h' },
      h('h2', { id: 'share-h' }, 'Share a read-only link'),
      h('p', { class: 'small muted' }, 'The link opens this job’s page, live, and nothing else: no controls, downloads, dataset or other jobs.'),
      form, made, status,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'shares', id: 'shares' },
          h('caption', { class: 'visually-hidden' }, 'Links to this job'),
          h('thead', {}, h('tr', {}, ['Created', 'Expires', 'State'].map((t) => h('th', { scope: 'col' }, t)), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Revoke')))),
          rows)));
    const failed = (err: unknown) => {
      status.className = 'small error';
      status.textContent = err instanceof ApiError ? err.describe().join('; ') : String(err);
    };

    async function list() {
      let shares: ShareView[];
      try {
        shares = await api.shares(id);
      } catch (err) {
        return failed(err);
      }
      if (disposed) return;
      const now = Date.now();
      rows.replaceChildren(...shares.map((x) => {
        const state = Date.parse(x.expiresAt) <= now ? 'expired' : 'active'; // revoked links are gone from the list
        const revoke = state === 'active' && h('button', { type: 'button', class: 'danger', 'data-share': x.id, 'aria-label': `Revoke the link made ${fmt.time(x.createdAt)}` }, 'Revoke');
        if (revoke) revoke.addEventListener('click', () => void revokeShare(x.id));
        return h('tr', { 'data-share': x.id, class: state === 'active' ? '' : 'muted' },
          h('td', { class: 'small' }, fmt.time(x.createdAt)), h('td', { class: 'small' }, fmt.time(x.expiresAt)), h('td', { class: 'share-state' }, state), h('td', {}, revoke));
      }));
      if (shares.length === 0) rows.replaceChildren(h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No links that still open the job.')));
    }

    async function revokeShare(shareId: string) {
      try {
        await api.revokeShare(id, shareId);
        status.className = 'small';
        status.textContent = 'Revoked: the link no longer opens the job.';
      } catch (err) {
        failed(err);
      }
      await list();
    }

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      create.disabled = true;
      status.textContent = '';
      try {
        const link: ShareCreated = await api.createShare(id, Number(expiry.value));
        url.value = link.url || `${location.origin}${location.pathname}#/jobs/${id}?share=${encodeURIComponent(link.token)}`;
        made.hidden = false;
        url.focus();
        url.select();
        status.className = 'small';
        status.textContent = `Link made; it expires ${fmt.time(link.expiresAt)}.`;
      } catch (err) {
        failed(err);
      } finally {
        create.disabled = false;
      }
      await list();
    });
    copy.addEventListener('click', async () => {
      status.className = 'small';
      status.textContent = await copyField(url);
    });
    shareToggle.addEventListener('click', () => {
      const open = panel.hidden;
      panel.hidden = !open;
      shareToggle.setAttribute('aria-expanded', String(open));
      if (open) void list();
    });
    return { panel };
  }

  // --- data ----------------------------------------------------------------------------------------------------
  function onEvents(events: StreamEvent[], live: boolean) {
    data.add(events);
    if (live) for (const ev of events) if (ev.kind === 'step') pendingLatency.push(Date.parse(ev.time));
    if (!historyLoaded) return; // the history draws once, when all of it is in
    if (events.some((ev) => ev.kind === 'state')) void refreshJob();
    if (events.some((ev) => ev.kind === 'snapshot')) void refreshVisuals();
    redraw(live);
  }

  function redraw(live: boolean) {
    if (!layerChartsBuilt) buildLayerCharts();
    const thinning = describeThinning(data.thinned);
    thinNote.hidden = thinning === null;
    if (thinning !== null && thinNote.textContent !== thinning) thinNote.textContent = thinning;
    for (const c of charts) c.invalidate();
    if (strips.size > 0 && !stripsTimer) stripsTimer = window.setTimeout(drawStrips, live ? 1000 : 0);
    scheduleHeader();
  }

  /** Filters of every conv layer and its feature maps for the chosen probe image, from the latest snapshot. */
  async function refreshVisuals() {
    let v: Awaited<ReturnType<typeof api.visuals>>;
    try {
      v = await api.visuals(id);
    } catch {
      return; // none yet: they come at the first epoch's end, or on request
    }
    if (disposed || (v.step === visualsStep && visualsHost.childElementCount > 0)) return;
    visualsStep = v.step;
    main.querySelector('#visuals-status')!.textContent = `Taken at step ${fmt.int(v.step)} (epoch ${v.epoch}).`;
    const probes = main.querySelector<HTMLElement>('#probes')!;
    if (probes.childElementCount === 0 && job) {
      // A viewer may not read the dataset: numbered buttons stand in for its samples.
      probes.replaceChildren(...Array.from({ length: v.probes }, (_, i) => {
        const b = h('button', { type: 'button', class: readOnly ? 'probe numbered' : 'probe', 'aria-pressed': String(i === probeImage), title: `probe image ${i}` },
          readOnly
            ? String(i + 1)
            : images.img(api.samplePng(job!.datasetId, i), { alt: `sample ${i}`, width: 40, height: 40 }));
        b.addEventListener('click', () => {
          probeImage = i;
          probes.querySelectorAll('button').forEach((x, k) => x.setAttribute('aria-pressed', String(k === i)));
          drawVisuals(v);
        });
        return b;
      }));
    }
    drawVisuals(v);
  }

  function drawVisuals(v: Awaited<ReturnType<typeof api.visuals>>) {
    const layer = encodeURIComponent;
    visualsHost.replaceChildren(...v.layers.map((l) => h('figure', { class: 'visual' },
      h('figcaption', {}, `${l.name}: ${l.filters} filters of ${l.kernel.join('×')}×${l.channels}`),
      h('div', { class: 'pair' },
        images.img(`jobs/${id}/filters/${layer(l.name)}.png?v=${v.step}`, { alt: `${l.name} filters at step ${v.step}`, class: 'filters' }),
        images.img(`jobs/${id}/featuremaps/${layer(l.name)}.png?sample=${probeImage}&v=${v.step}`, { alt: `${l.name} feature maps of probe image ${probeImage} at step ${v.step}`, class: 'maps' })))));
    images.sweep();
  }

  /** Classify an image the user gives: top classes with bars, and the feature maps it produced. */
  async function tryImage(file: File) {
    tryResult.replaceChildren(h('p', { class: 'muted' }, `Classifying ${file.name}…`));
    const form = new FormData();
    form.append('images', file, file.name);
    const classes = Number((job?.model.layers?.at(-1) as { units?: number } | undefined)?.units ?? 3);
    form.append('top', String(Math.min(3, classes)));
    try {
      const response = await authFetch(`jobs/${id}/predict?featureMaps=true`, { method: 'POST', body: form });
      if (!response.ok) throw new ApiError(response.status, await problemOf(response));
      const body = await response.json();
      if (disposed) return;
      const top: { class: number; name: string | null; probability: number }[] = body.predictions[0].top;
      if (tryUrl) URL.revokeObjectURL(tryUrl);
      tryUrl = URL.createObjectURL(file);
      tryResult.replaceChildren(
        h('div', { class: 'try-row' },
          h('img', { src: tryUrl, alt: file.name, class: 'try-image' }),
          h('table', { class: 'counts', id: 'try-top' },
            h('caption', {}, `Weights: ${body.source} (step ${fmt.int(body.step)})`),
            h('tbody', {}, top.map((t) => h('tr', {},
              h('th', { scope: 'row' }, t.name ?? `class ${t.class}`),
              h('td', { class: 'num' }, fmt.pct(t.probability)),
              h('td', { class: 'bar-cell' }, h('span', { class: 'bar', style: `width:${100 * t.probability}%` }))))))),
        ...Object.entries(body.featureMaps ?? {}).map(([layer, src]) => h('figure', { class: 'visual' },
          h('figcaption', {}, `${layer}: the feature maps this image produced`), h('img', { src: src as string, alt: `${layer} feature maps of ${file.name}` }))));
    } catch (err) {
      tryResult.replaceChildren(h('p', { class: 'error' }, err instanceof ApiError ? err.describe().join('; ') : String(err)));
    }
  }
  tryInput.addEventListener('change', () => { if (tryInput.files?.[0]) void tryImage(tryInput.files[0]); });
  tryZone.addEventListener('dragover', (ev) => { ev.preventDefault(); tryZone.classList.add('over'); });
  tryZone.addEventListener('dragleave', () => tryZone.classList.remove('over'));
  tryZone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    tryZone.classList.remove('over');
    const file = ev.dataTransfer?.files?.[0];
    if (file) void tryImage(file);
  });

  snapshotButton.addEventListener('click', async () => {
    try {
      await api.snapshot(id);
      main.querySelector('#visuals-status')!.textContent = 'Taking pictures before the next step…';
    } catch (err) {
      main.querySelector('#visuals-status')!.textContent = err instanceof ApiError ? err.describe().join('; ') : String(err);
    }
  });

  async function refreshJob() {
    try {
      job = await api.job(id);
      if (disposed) return;
      title.textContent = `Job ${fmt.short(id)} · ${job.model.name ?? 'model'}`;
      if (job.error) data.notices.some((n) => n.text === job!.error) || notices.append(h('li', { class: 'error' }, job.error));
      scheduleHeader();
    } catch {
      // The stream keeps the page current; the header's totals wait for the next state change.
    }
  }

  let renderedNotices = 0;
  const noticeTimer = window.setInterval(() => {
    for (; renderedNotices < data.notices.length; renderedNotices++) {
      const n = data.notices[renderedNotices];
      notices.prepend(h('li', { class: n.severity }, h('strong', {}, n.title), ' ', n.text, h('span', { class: 'small muted' }, ` (${fmt.time(n.time)})`)));
    }
    if (notices.childElementCount === 0) notices.replaceChildren(h('li', { class: 'muted empty' }, 'None so far.'));
    else notices.querySelector('.empty')?.remove();
  }, 250);

  // A run resumed from a checkpoint replaced events drawn here (the job's worker died after it): the page starts over
  // from the history, which holds the new ones. Rare, and simpler and surer than undoing every chart and table.
  const follower = new JobFollower(id, onEvents, (status) => { link = status; scheduleHeader(); },
    () => { if (!disposed) window.dispatchEvent(new HashChangeEvent('hashchange')); });
  const started = performance.now();
  void (async () => {
    try {
      job = await api.job(id);
    } catch (err) {
      if (disposed) return; // a 401 brought the sign-in form
      main.replaceChildren(...nodes(h('h1', {}, 'Job not found'), h('p', {}, err instanceof ApiError ? err.describe().join('; ') : String(err)),
        !options.shared && h('a', { href: '#/' }, 'All jobs')));
      return;
    }
    if (disposed) return;
    title.textContent = `Job ${fmt.short(id)} · ${job.model.name ?? 'model'}${job.sanity ? ` · ${job.sanity.check}` : ''}`;
    if (job.sweepId && !options.shared) {
      sweepOf.hidden = false;
      sweepOf.replaceChildren(`Trial ${job.sweepTrial ?? '?'} of `, h('a', { href: `#/sweeps/${job.sweepId}` }, `sweep ${fmt.short(job.sweepId)}`),
        job.stopCode ? ` · stopped: ${job.stopCode}` : '');
    }
    buildRangeTestChart();
    scheduleHeader();
    await follower.start(job.lastSeq, () => {
      historyLoaded = true;
      void refreshVisuals();
      redraw(false);
      scheduleHeader();
    });
    // History is in and drawn at the next frame: record when, for the 100,000-step rendering test.
    requestAnimationFrame(() => requestAnimationFrame(() => {
      probe.historyMs = performance.now() - started;
      main.dataset.historyLoaded = 'true';
    }));
  })();

  return {
    dispose() {
      disposed = true;
      follower.close();
      images.dispose();
      if (tryUrl) URL.revokeObjectURL(tryUrl);
      for (const c of charts) c.destroy();
      for (const strip of strips.values()) strip.destroy();
      window.clearInterval(noticeTimer);
      window.clearTimeout(stripsTimer);
    },
  };
}
