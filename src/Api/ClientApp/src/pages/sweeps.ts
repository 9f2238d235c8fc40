import { api, ApiError } from '../api';
import { fmt, h, type Page } from '../dom';
import { formatMetric, sweepMetrics } from '../sweeps';
import { trialStatuses, type SweepSummary } from '../types';

/** The sweeps list: state, strategy, trials by status, the best value so far; refreshed every two seconds. */
export function sweepsPage(main: HTMLElement): Page {
  let timer = 0;
  let disposed = false;
  const body = h('tbody');
  const status = h('p', { class: 'muted', role: 'status' });
  main.replaceChildren(
    h('div', { class: 'heading' }, h('h1', {}, 'Sweeps')),
    h('p', { class: 'small muted' }, 'A sweep trains many jobs from one base job over a search space (POST /sweeps, see the API); each trial is a job of its own.'),
    h('div', { class: 'table-wrap' },
      h('table', { class: 'sweeps' },
        h('thead', {}, h('tr', {}, ['Sweep', 'State', 'Strategy', 'Trials', 'Best', 'Steps', 'Created'].map((t) => h('th', { scope: 'col' }, t)))),
        body)),
    status);

  async function refresh() {
    window.clearTimeout(timer);
    try {
      const sweeps = (await api.sweeps()).items;
      if (disposed) return;
      body.replaceChildren(...sweeps.map(row));
      status.textContent = sweeps.length === 0 ? 'No sweeps yet.' : '';
    } catch (e) {
      status.textContent = e instanceof ApiError ? e.describe().join('; ') : `The service is unreachable (${String(e)}); retrying.`;
    }
    if (!disposed) timer = window.setTimeout(refresh, document.hidden ? 5000 : 2000);
  }

  void refresh();
  return { dispose: () => { disposed = true; window.clearTimeout(timer); } };
}

function row(s: SweepSummary): HTMLTableRowElement {
  const metric = sweepMetrics[s.metric]?.label ?? String(s.metric);
  const counts = trialStatuses.filter((st) => (s.counts?.[st] ?? 0) > 0).map((st) => `${s.counts[st]} ${st.toLowerCase()}`).join(', ');
  return h('tr', { 'data-sweep': s.id },
    h('td', {}, h('a', { href: `#/sweeps/${s.id}` }, s.name || fmt.short(s.id))),
    h('td', {}, h('span', { class: `badge ${String(s.state).toLowerCase()}` }, s.state)),
    h('td', {}, s.strategy),
    h('td', { class: 'small' }, `${fmt.int(s.trials)}: ${counts || 'none started'}`),
    h('td', { class: 'num' }, s.best ? `${formatMetric(s.metric, s.best.value)} (trial ${s.best.index})` : '–', h('div', { class: 'small muted' }, metric)),
    h('td', { class: 'num' }, fmt.int(s.steps)),
    h('td', { class: 'small' }, fmt.time(s.createdAt)));
}
