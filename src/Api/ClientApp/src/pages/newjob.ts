import { api, ApiError } from '../api';
import { fmt, h, type Page } from '../dom';
import { augmentationFrom, augmentedSampleUrl } from '../hyperparameters';
import { AuthedImages } from '../images';
import { formatSpec } from '../specformat';
import type { DatasetView, LayerReport, ModelPreset, ModelSpec, ModelSummary, Problem, SpecIssue, ValidationResult } from '../types';

/**
 * New job: pick or generate a dataset (samples and class counts shown), write or pick a model spec while its
 * per-layer table from /models/validate follows the typing (errors on their layer's row), set hyperparameters, start.
 */
export function newJobPage(main: HTMLElement, navigate: (hash: string) => void): Page {
  let disposed = false;
  let datasets: DatasetView[] = [];
  let validation: AbortController | undefined;
  let debounce = 0;
  let previewDebounce = 0;
  let previewRender = 0;
  const images = new AuthedImages();

  // --- dataset -------------------------------------------------------------------------------------------------
  const datasetSelect = h('select', { id: 'dataset', name: 'datasetId', 'data-field': 'datasetId' });
  const datasetInfo = h('div', { class: 'dataset-info', 'aria-live': 'polite' });
  const gen = {
    classes: h('input', { id: 'gen-classes', type: 'number', min: 2, max: 10, value: 4 }),
    samples: h('input', { id: 'gen-samples', type: 'number', min: 1, max: 200000, value: 2000 }),
    testSamples: h('input', { id: 'gen-test', type: 'number', min: 0, max: 100000, value: 500 }),
    imageSize: h('input', { id: 'gen-size', type: 'number', min: 16, max: 64, value: 28 }),
    channels: h('select', { id: 'gen-channels' }, h('option', { value: 1 }, '1 (grey)'), h('option', { value: 3 }, '3 (colour)')),
  };
  const genStatus = h('p', { class: 'muted', role: 'status' });
  const genButton = h('button', { type: 'button', id: 'generate' }, 'Generate shapes dataset');
  genButton.addEventListener('click', async () => {
    genButton.disabled = true;
    genStatus.textContent = 'Generating…';
    try {
      const d = await api.builtinDataset({
        kind: 'shapes',
        classes: gen.classes.valueAsNumber,
        samples: gen.samples.valueAsNumber,
        testSamples: gen.testSamples.valueAsNumber,
        imageSize: gen.imageSize.valueAsNumber,
        channels: Number(gen.channels.value),
      });
      genStatus.textContent = `Generated ${d.name}: ${fmt.int(d.trainCount)} train and ${fmt.int(d.testCount)} test images.`;
      await loadDatasets(d.id);
    } catch (e) {
      genStatus.textContent = e instanceof ApiError ? e.describe().join('; ') : String(e);
    } finally {
      genButton.disabled = false;
    }
  });

  // --- model ---------------------------------------------------------------------------------------------------
  const presetBar = h('div', { class: 'presets', role: 'group', 'aria-label': 'Model presets' });
  const editor = h('textarea', {
    id: 'spec', name: 'model', rows: 18, spellcheck: 'false', autocomplete: 'off', 'data-field': 'model',
    'aria-describedby': 'spec-help', 'aria-label': 'Model spec (JSON)',
  });
  const specStatus = h('p', { id: 'spec-status', role: 'status', class: 'muted' });
  const layerTable = h('tbody');
  editor.addEventListener('input', () => scheduleValidation());
  editor.addEventListener('keydown', (e) => {
    // Tab indents inside the editor; Escape then Tab leaves it (keyboard users are never trapped).
    if (e.key === 'Tab' && !e.shiftKey && editor.dataset.escaped !== 'true') {
      e.preventDefault();
      editor.setRangeText('  ', editor.selectionStart, editor.selectionEnd, 'end');
      scheduleValidation();
    }
    editor.dataset.escaped = String(e.key === 'Escape');
  });

  // --- hyperparameters -----------------------------------------------------------------------------------------
  const hp = {
    epochs: numberField('epochs', 'Epochs', 3, 1),
    batchSize: numberField('batchSize', 'Batch size', 64, 1),
    learningRate: numberField('learningRate', 'Learning rate', 0.01, 'any'),
    momentum: numberField('momentum', 'Momentum', 0.9, 'any'),
    weightDecay: numberField('weightDecay', 'Weight decay', 0, 'any'),
    validationFraction: numberField('validationFraction', 'Validation fraction (empty: the test split)', '', 'any'),
    seed: numberField('seed', 'Seed', 1, 1),
  };
  const optimizer = h('select', { id: 'hp-optimizer', 'data-field': 'hyperparameters.optimizer' }, [['sgd', 'SGD'], ['adam', 'Adam'], ['adamw', 'AdamW']].map(([v, t]) => h('option', { value: v }, t)));
  const schedule = h('select', { id: 'hp-schedule', 'data-field': 'hyperparameters.schedule' }, [['constant', 'Constant'], ['step', 'Step (× gamma every stepSize epochs)'], ['cosine', 'Cosine']].map(([v, t]) => h('option', { value: v }, t)));
  const nesterov = h('input', { id: 'hp-nesterov', type: 'checkbox', 'data-field': 'hyperparameters.nesterov' });
  const statsEvery = h('input', { id: 'mon-statsEvery', type: 'number', min: 1, value: 10, 'data-field': 'monitoring.statsEvery' });
  const mode = h('select', { id: 'mode', 'data-field': 'sanity.check' },
    h('option', { value: '' }, 'Train'),
    h('option', { value: 'overfitSubset' }, 'Sanity check: overfit 20 samples (the loss must reach ~0)'),
    h('option', { value: 'learningRateRangeTest' }, 'Sanity check: learning-rate range test (suggests a rate)'));
  const rangeMin = h('input', { id: 'range-min', type: 'number', step: 'any', value: 1e-5, 'data-field': 'sanity.minLearningRate' });
  const rangeMax = h('input', { id: 'range-max', type: 'number', step: 'any', value: 1, 'data-field': 'sanity.maxLearningRate' });
  const rangeSteps = h('input', { id: 'range-steps', type: 'number', value: 200, 'data-field': 'sanity.steps' });
  const rangeFields = h('div', { class: 'grid', hidden: true },
    labelled('range-min', 'From learning rate', rangeMin), labelled('range-max', 'To learning rate', rangeMax), labelled('range-steps', 'Steps', rangeSteps));
  mode.addEventListener('change', () => { rangeFields.hidden = mode.value !== 'learningRateRangeTest'; });

  // --- augmentation (off unless asked) -------------------------------------------------------------------------
  const aug = {
    on: h('input', { id: 'aug-on', type: 'checkbox', 'aria-controls': 'aug-fields' }),
    padding: h('input', { id: 'aug-crop', type: 'number', min: 1, step: 1, value: 2, 'data-field': 'hyperparameters.augmentation.randomCrop.padding' }),
    flip: h('input', { id: 'aug-flip', type: 'checkbox', checked: true, 'data-field': 'hyperparameters.augmentation.horizontalFlip' }),
    translate: h('input', { id: 'aug-translate', type: 'number', min: 1, step: 1, value: '', 'data-field': 'hyperparameters.augmentation.translate' }),
  };
  const augStatus = h('p', { id: 'aug-status', class: 'small muted', role: 'status' });
  const augPreview = h('div', { id: 'aug-preview', class: 'aug-preview', 'aria-label': 'Augmented training images' });
  const augFields = h('div', { id: 'aug-fields', hidden: true },
    h('div', { class: 'grid' },
      labelled('aug-crop', 'Random crop: zero padding (px; empty: none)', aug.padding),
      h('label', { class: 'check', for: 'aug-flip' }, aug.flip, ' Horizontal flip (half the time)'),
      labelled('aug-translate', 'Translate by up to ± px (empty: none)', aug.translate)),
    augStatus, augPreview);
  for (const input of [aug.on, aug.padding, aug.flip, aug.translate, hp.seed.input]) input.addEventListener('input', () => schedulePreview());
  const startErrors = h('ul', { class: 'errors', role: 'alert' });
  const start = h('button', { type: 'submit', id: 'start', class: 'primary' }, 'Start training');

  const form = h('form', { class: 'new-job', novalidate: true },
    h('h1', {}, 'New job'),
    h('section', { 'aria-labelledby': 'dataset-h' },
      h('h2', { id: 'dataset-h' }, '1. Dataset'),
      h('label', { for: 'dataset' }, 'Train on'), datasetSelect,
      datasetInfo,
      h('details', {},
        h('summary', {}, 'Generate a dataset of shapes'),
        h('div', { class: 'grid' },
          labelled('gen-classes', 'Classes', gen.classes), labelled('gen-samples', 'Train images', gen.samples),
          labelled('gen-test', 'Test images', gen.testSamples), labelled('gen-size', 'Image side (px)', gen.imageSize),
          labelled('gen-channels', 'Channels', gen.channels)),
        genButton, genStatus)),
    h('section', { 'aria-labelledby': 'model-h' },
      h('h2', { id: 'model-h' }, '2. Model'),
      presetBar,
      h('p', { id: 'spec-help', class: 'small muted' }, 'JSON: input {channels, height, width} and layers [{kind, …}]. The table below follows as you type. Tab indents; Esc then Tab leaves the editor.'),
      editor,
      specStatus,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'layers' },
          h('caption', { class: 'visually-hidden' }, 'Per-layer table'),
          h('thead', {}, h('tr', {}, ['#', 'Layer', 'Kind', 'Output', 'Parameters', 'Mult-adds', 'Receptive field'].map((t) => h('th', { scope: 'col' }, t)))),
          layerTable))),
    h('section', { 'aria-labelledby': 'hp-h' },
      h('h2', { id: 'hp-h' }, '3. Hyperparameters'),
      h('div', { class: 'grid' },
        hp.epochs.label, hp.batchSize.label, labelled('hp-optimizer', 'Optimizer', optimizer), hp.learningRate.label, hp.momentum.label,
        h('label', { class: 'check', for: 'hp-nesterov' }, nesterov, ' Nesterov momentum'),
        hp.weightDecay.label, labelled('hp-schedule', 'Schedule', schedule), hp.validationFraction.label, hp.seed.label,
        labelled('mon-statsEvery', 'Layer statistics every … steps', statsEvery)),
      h('fieldset', { class: 'augmentation' },
        h('legend', {}, 'Augmentation'),
        h('label', { class: 'check', for: 'aug-on' }, aug.on, ' Augment the training images (never validation, test or predictions; not in the overfit check)'),
        augFields),
      labelled('mode', 'Run', mode),
      rangeFields),
    startErrors,
    start);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void submit();
  });
  datasetSelect.addEventListener('change', () => void showDataset());
  main.replaceChildren(form);

  async function loadDatasets(select?: string) {
    datasets = await api.datasets();
    if (disposed) return;
    datasetSelect.replaceChildren(...datasets.map((d) =>
      h('option', { value: d.id, selected: d.id === select }, `${d.name} · ${fmt.shape(d.shape)} · ${d.classes} classes · ${fmt.int(d.trainCount)} images`)));
    if (datasets.length === 0) {
      datasetSelect.append(h('option', { value: '' }, 'No datasets yet: generate one below'));
    }
    await showDataset();
  }

  async function showDataset() {
    const d = datasets.find((x) => x.id === datasetSelect.value);
    if (!d) {
      datasetInfo.replaceChildren(h('p', { class: 'muted' }, 'Generate a dataset below, or upload one through the API (POST /datasets).'));
      return;
    }
    const total = d.classCounts.reduce((a, b) => a + b, 0);
    const names = d.classNames ?? d.classCounts.map((_, i) => `class ${i}`);
    datasetInfo.replaceChildren(
      h('div', { class: 'thumbs', 'aria-label': 'Sample images' },
        Array.from({ length: Math.min(16, d.trainCount) }, (_, i) => images.img(api.samplePng(d.id, i), { alt: `train sample ${i}`, width: 48, height: 48 }))),
      h('table', { class: 'counts' },
        h('caption', {}, `${d.source} · ${fmt.shape(d.shape)} · ${fmt.int(d.trainCount)} train, ${fmt.int(d.testCount)} test`),
        h('tbody', {}, d.classCounts.map((c, i) => h('tr', {},
          h('th', { scope: 'row' }, names[i] ?? `class ${i}`),
          h('td', { class: 'num' }, fmt.int(c)),
          h('td', { class: 'bar-cell' }, h('span', { class: 'bar', style: `width:${total ? (100 * c) / Math.max(...d.classCounts) : 0}%` })))))));
    images.sweep();
    showAugmentation();
    await loadPresets(d);
  }

  async function loadPresets(d: DatasetView) {
    const [channels, height, width] = d.shape;
    let presets: ModelPreset[] = [];
    let saved: ModelSummary[] = [];
    try {
      [presets, { items: saved }] = await Promise.all([api.presets(channels, height, width, d.classes), api.models()]);
    } catch (e) {
      presetBar.replaceChildren(h('span', { class: 'muted' }, e instanceof ApiError ? e.describe().join('; ') : String(e)));
      return;
    }
    presetBar.replaceChildren(h('span', { class: 'small' }, 'Presets: '), ...presets.map((p) => {
      const b = h('button', { type: 'button', title: p.description, 'data-preset': p.name }, p.name);
      b.addEventListener('click', () => setSpec(p.spec));
      return b;
    }), ...(saved.length > 0 ? [h('span', { class: 'small' }, ' Saved: ')] : []), ...saved.map((m) => {
      const b = h('button', { type: 'button', title: `${fmt.int(m.parameters)} parameters (POST /models)`, 'data-model': m.id }, m.name);
      // The list has no specs: the chosen one is fetched.
      b.addEventListener('click', () => void api.model(m.id).then((full) => setSpec(full.spec), (e: unknown) => {
        specStatus.className = 'error';
        specStatus.textContent = e instanceof ApiError ? e.describe().join('; ') : String(e);
      }));
      return b;
    }));
    // A new dataset brings a fresh spec sized to it, unless the user has written one of their own.
    if (!editor.value || editor.dataset.fromPreset === 'true') setSpec(presets.find((p) => p.name === 'lenet5')?.spec ?? presets[0].spec);
  }

  function setSpec(spec: ModelSpec) {
    editor.value = formatSpec(spec);
    editor.dataset.fromPreset = 'true';
    scheduleValidation(0);
  }

  function scheduleValidation(delay = 250) {
    if (delay > 0) editor.dataset.fromPreset = 'false';
    window.clearTimeout(debounce);
    debounce = window.setTimeout(() => void validate(), delay);
  }

  async function validate() {
    validation?.abort();
    let spec: unknown;
    try {
      spec = JSON.parse(editor.value);
    } catch (e) {
      specStatus.className = 'error';
      specStatus.textContent = `Not JSON yet: ${jsonError(editor.value, e)}`;
      editor.setAttribute('aria-invalid', 'true');
      return;
    }
    validation = new AbortController();
    try {
      const result = await api.validate(spec, validation.signal);
      renderValidation(result);
    } catch (e) {
      if ((e as Error).name === 'AbortError') return;
      specStatus.className = 'error';
      specStatus.textContent = e instanceof ApiError ? e.describe().join('; ') : String(e);
      editor.setAttribute('aria-invalid', 'true');
    }
  }

  /** A graph layer: it takes something other than the layer just before it (which a plain stack leaves unsaid). */
  function takesOthers(layers: LayerReport[], l: LayerReport): boolean {
    const previous = layers.find((x) => x.index === l.index - 1)?.name ?? 'input';
    return !!l.inputs && (l.inputs.length !== 1 || l.inputs[0] !== previous);
  }

  function renderValidation(r: ValidationResult) {
    editor.setAttribute('aria-invalid', String(!r.valid));
    specStatus.className = r.valid ? 'ok' : 'error';
    specStatus.textContent = r.valid
      ? `Valid: ${fmt.int(r.totalParameters)} parameters, ${fmt.int(r.totalMultiplyAdds)} multiply-adds per image, output ${fmt.shape(r.outputShape)}.`
      : `${r.errors.length} error${r.errors.length === 1 ? '' : 's'}: ${r.errors.filter((e) => e.layerIndex == null).map((e) => e.message).join(' ') || 'see the layers marked below.'}`;
    const byLayer = new Map<number, SpecIssue[]>();
    for (const issue of [...r.errors, ...r.warnings]) {
      if (issue.layerIndex == null) continue;
      byLayer.set(issue.layerIndex, [...(byLayer.get(issue.layerIndex) ?? []), issue]);
    }
    const indices = [...new Set([...r.layers.map((l) => l.index), ...byLayer.keys()])].sort((a, b) => a - b);
    const rows: HTMLTableRowElement[] = [];
    for (const i of indices) {
      const l = r.layers.find((x) => x.index === i);
      const issues = byLayer.get(i) ?? [];
      const isError = issues.some((x) => r.errors.includes(x));
      rows.push(h('tr', { class: isError ? 'has-error' : issues.length ? 'has-warning' : '', 'data-layer': i },
        h('td', { class: 'num' }, i),
        h('td', {}, l?.name ?? issues[0]?.layerName ?? ''),
        h('td', {}, l?.kind ?? '', l && takesOthers(r.layers, l) ? h('span', { class: 'muted' }, ` ← ${l.inputs!.join(' + ')}`) : ''),
        h('td', {}, l ? fmt.shape(l.outputShape) : '–'),
        h('td', { class: 'num' }, l ? fmt.int(l.parameters) : '–'),
        h('td', { class: 'num' }, l ? fmt.int(l.multiplyAdds) : '–'),
        h('td', {}, l?.receptiveField ? fmt.shape(l.receptiveField) : '–')));
      for (const issue of issues) {
        const error = r.errors.includes(issue);
        rows.push(h('tr', { class: error ? 'issue error' : 'issue warning' },
          h('td', {}), h('td', { colspan: 6 }, `${error ? 'Error' : 'Warning'} at ${issue.field}: ${issue.message}`)));
      }
    }
    layerTable.replaceChildren(...rows);
  }

  function currentAugmentation() {
    return augmentationFrom({ on: aug.on.checked, padding: aug.padding.value, flip: aug.flip.checked, translate: aug.translate.value });
  }

  function schedulePreview() {
    augFields.hidden = !aug.on.checked;
    window.clearTimeout(previewDebounce);
    previewDebounce = window.setTimeout(showAugmentation, 200);
  }

  /** A few training images, each followed by how epochs 1–6 of this job (its seed) will see it: the server draws them as the trainer does. */
  function showAugmentation() {
    augFields.hidden = !aug.on.checked;
    const render = ++previewRender;
    for (const input of [aug.padding, aug.translate]) input.removeAttribute('aria-invalid');
    augStatus.className = 'small muted';
    const d = datasets.find((x) => x.id === datasetSelect.value);
    const a = currentAugmentation();
    if (!aug.on.checked || !d || !a) {
      augPreview.replaceChildren();
      images.sweep();
      augStatus.textContent = aug.on.checked && d ? 'Choose a crop, the flip or a translation.' : '';
      return;
    }
    const seed = Number.isInteger(hp.seed.input.valueAsNumber) ? hp.seed.input.valueAsNumber : 1;
    augStatus.textContent = `Each row: a training image, then as this job (seed ${seed}) trains on it in epochs 1 to 6.`;
    const failed = (problem: Problem, status: number) => {
      if (render !== previewRender || augStatus.dataset.failed === String(render)) return;
      augStatus.dataset.failed = String(render);
      augStatus.className = 'small error';
      augStatus.textContent = new ApiError(status, problem).describe().join('; ');
      for (const field of Object.keys(problem.errors ?? {})) (field === 'randomCrop' ? aug.padding : field === 'translate' ? aug.translate : undefined)?.setAttribute('aria-invalid', 'true');
    };
    augPreview.replaceChildren(...Array.from({ length: Math.min(4, d.trainCount) }, (_, i) => h('div', { class: 'aug-row' },
      images.img(api.samplePng(d.id, i), { alt: `train sample ${i}`, class: 'original', width: 40, height: 40 }),
      Array.from({ length: 6 }, (_, v) =>
        images.img(augmentedSampleUrl(d.id, i, a, seed, v + 1), { alt: `train sample ${i} in epoch ${v + 1}`, width: 40, height: 40 }, failed)))));
    images.sweep();
  }

  async function submit() {
    startErrors.replaceChildren();
    form.querySelectorAll('[aria-invalid="true"]').forEach((el) => el !== editor && el.removeAttribute('aria-invalid'));
    let model: unknown;
    try {
      model = JSON.parse(editor.value);
    } catch (e) {
      startErrors.append(h('li', {}, `model: not JSON: ${jsonError(editor.value, e)}`));
      editor.focus();
      return;
    }
    const fraction = hp.validationFraction.input.value.trim();
    const body = {
      datasetId: datasetSelect.value || undefined,
      model,
      hyperparameters: {
        epochs: hp.epochs.input.valueAsNumber,
        batchSize: hp.batchSize.input.valueAsNumber,
        optimizer: optimizer.value,
        learningRate: hp.learningRate.input.valueAsNumber,
        momentum: hp.momentum.input.valueAsNumber,
        nesterov: nesterov.checked,
        weightDecay: hp.weightDecay.input.valueAsNumber,
        schedule: schedule.value,
        seed: hp.seed.input.valueAsNumber,
        validationFraction: fraction === '' ? null : Number(fraction),
        augmentation: currentAugmentation(),
      },
      monitoring: { statsEvery: statsEvery.valueAsNumber },
      sanity: mode.value === 'overfitSubset'
        ? { check: 'overfitSubset' }
        : mode.value === 'learningRateRangeTest'
          ? { check: 'learningRateRangeTest', minLearningRate: rangeMin.valueAsNumber, maxLearningRate: rangeMax.valueAsNumber, steps: rangeSteps.valueAsNumber }
          : undefined,
    };
    start.disabled = true;
    try {
      const job = await api.createJob(body);
      navigate(`#/jobs/${job.id}`);
    } catch (e) {
      const lines = e instanceof ApiError ? e.describe() : [String(e)];
      startErrors.replaceChildren(...lines.map((l) => h('li', {}, l)));
      if (e instanceof ApiError) {
        for (const field of [...Object.keys(e.problem.errors ?? {}), e.problem.field ?? '']) {
          form.querySelector(`[data-field="${CSS.escape(field)}"]`)?.setAttribute('aria-invalid', 'true');
        }
      }
    } finally {
      start.disabled = false;
    }
  }

  void loadDatasets();
  return { dispose: () => { disposed = true; window.clearTimeout(debounce); window.clearTimeout(previewDebounce); validation?.abort(); images.dispose(); } };
}

function numberField(name: string, text: string, value: number | string, step: number | 'any') {
  const id = `hp-${name}`;
  const input = h('input', { id, name, type: 'number', step, value, 'data-field': `hyperparameters.${name}` });
  return { input, label: labelled(id, text, input) };
}

function labelled(id: string, text: string, control: HTMLElement) {
  return h('div', { class: 'field' }, h('label', { for: id }, text), control);
}

/** JSON.parse's message with the line and column of its position, when it gives one. */
function jsonError(text: string, e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const m = /position (\d+)/.exec(message);
  if (!m) return message;
  const before = text.slice(0, Number(m[1]));
  const line = before.split('\n').length;
  const column = before.length - before.lastIndexOf('\n');
  return `${message} (line ${line}, column ${column})`;
}
