import { api, ApiError } from '../api';
import { fmt, h, type Page } from '../dom';
import { runStates, type JobSummary, type RunState } from '../types';

/** The jobs list: state, progress with ETA, latest loss, best validation accuracy; refreshed every second. */
export function jobsPage(main: HTMLElement, query: URLSearchParams): Page {
  let state = (query.get('state') ?? '') as RunState | '';
  let timer = 0;
  let disposed = false;
  const filter = h('select', { id: 'state-filter', 'aria-label': 'Show jobs in state' },
    h('option', { value: '' }, 'All states'),
    runStates.map((s) => h('option', { value: s, selected: s === state }, s)));
  filter.addEventListener('change', () => {
    state = filter.value as RunState | '';
    history.replaceState(null, '', state ? `#/?state=${state}` : '#/');
    void refresh();
  });
  // Jobs picked to compare: kept across the list's refreshes.
  const picked = new Set<string>();
  const compare = h('a', { id: 'compare-picked', class: 'button', 'aria-disabled': 'true' }, 'Compare');
  function updateCompare() {
    const ok = picked.size >= 2 && picked.size <= 20;
    compare.textContent = picked.size ? `Compare ${picked.size}` : 'Compare';
    compare.setAttribute('aria-disabled', String(!ok));
    if (ok) compare.setAttribute('href', `#/compare?ids=${[...picked].join(',')}`);
    else compare.removeAttribute('href');
    compare.title = ok ? '' : 'Tick 2 to 20 jobs to compare';
  }
  updateCompare();
  const body = h('tbody');
  body.addEventListener('change', (ev) => {
    const box = ev.target as HTMLInputElement;
    if (!box.dataset.compare) return;
    if (box.checked) picked.add(box.dataset.compare);
    else picked.delete(box.dataset.compare);
    updateCompare();
  });
  const status = h('p', { class: 'muted', role: 'status' });
  main.replaceChildren(
    h('div', { class: 'heading' }, h('h1', {}, 'Jobs'), h('div', {}, compare, ' ', h('a', { class: 'button primary', href: '#/new' }, 'New job'))),
    h('label', { class: 'inline' }, 'State ', filter),
    h('div', { class: 'table-wrap' },
      h('table', { class: 'jobs' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Compare')),
          ['Job', 'Model', 'State', 'Progress', 'Latest loss', 'Best val. acc.', 'Created'].map((t) => h('th', { scope: 'col' }, t)))),
        body)),
    status);

  async function refresh() {
    window.clearTimeout(timer);
    try {
      const jobs = (await api.jobs(state)).items;
      if (disposed) return;
      body.replaceChildren(...jobs.map((job) => row(job, picked.has(job.id))));
      status.textContent = jobs.length === 0 ? (state ? `No ${state} jobs.` : 'No jobs yet: start one with “New job”.') : '';
    } catch (e) {
      status.textContent = e instanceof ApiError ? e.describe().join('; ') : `The service is unreachable (${String(e)}); retrying.`;
    }
    if (!disposed) timer = window.setTimeout(refresh, document.hidden ? 5000 : 1000);
  }

  void refresh();
  return { dispose: () => { disposed = true; window.clearTimeout(timer); } };
}

function row(job: JobSummary, picked: boolean): HTMLTableRowElement {
  const pct = Math.round(job.progress * 100);
  return h('tr', { 'data-job': job.id },
    h('td', {}, h('input', { type: 'checkbox', 'data-compare': job.id, checked: picked, 'aria-label': `Compare job ${fmt.short(job.id)}` })),
    h('td', {}, h('a', { href: `#/jobs/${job.id}` }, fmt.short(job.id)),
      job.sweepId && h('div', { class: 'small' }, h('a', { href: `#/sweeps/${job.sweepId}`, class: 'sweep-of' },
        `sweep ${fmt.short(job.sweepId)}${job.sweepTrial !== null && job.sweepTrial !== undefined ? ` · trial ${job.sweepTrial}` : ''}`))),
    h('td', {}, job.modelName ?? 'model'),
    h('td', {}, h('span', { class: `badge ${job.state.toLowerCase()}` }, job.state)),
    h('td', { class: 'progress-cell' },
      h('progress', { max: 100, value: pct, 'aria-label': `${pct}% done` }),
      h('span', { class: 'small' }, `${fmt.int(job.step)}/${fmt.int(job.totalSteps)}`, job.etaSeconds != null ? ` · ETA ${fmt.duration(job.etaSeconds)}` : '')),
    h('td', { class: 'num' }, fmt.num(job.latestLoss)),
    h('td', { class: 'num' }, fmt.pct(job.bestValidationAccuracy)),
    h('td', { class: 'small' }, fmt.time(job.createdAt)));
}
