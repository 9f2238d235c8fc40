import { colorOf } from './curves';
import { fmt } from './dom';
import type { SweepMetricName, SweepTrial, TrialStatus } from './types';

/** A sweep's metric: its history tag (the epoch event's figure), its name on the page, and how its values read. */
export const sweepMetrics: Record<SweepMetricName, { tag: string; label: string; accuracy: boolean }> = {
  validationAccuracy: { tag: 'epoch/validation_accuracy', label: 'Validation accuracy', accuracy: true },
  validationLoss: { tag: 'epoch/validation_loss', label: 'Validation loss', accuracy: false },
  trainAccuracy: { tag: 'epoch/train_accuracy', label: 'Training accuracy', accuracy: true },
  trainLoss: { tag: 'epoch/train_loss', label: 'Training loss', accuracy: false },
};

/** The metric as a person reads it: an accuracy in percent, a loss to 4 significant digits; – when missing. */
export function formatMetric(metric: SweepMetricName, v: number | null | undefined): string {
  return sweepMetrics[metric]?.accuracy ? fmt.pct(v) : fmt.num(v);
}

/** A trial's colour on every chart and in the table: by its index, so it keeps it as other trials start and end. */
export function trialColor(index: number): string {
  return colorOf(((index % 20) + 20) % 20);
}

/** A setting's value as the table and the axes show it: numbers compactly, strings as they are, anything else as JSON. */
export function formatParam(v: unknown): string {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return Number.isFinite(v) ? String(Number(v.toPrecision(4))) : String(v);
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** A search-space path without its section: learningRate, conv1.filters. */
export function shortPath(path: string): string {
  return path.replace(/^(hyperparameters|layers|monitoring)\./, '');
}

/** Why a trial ended early: its stop code and its job's reason (the code once, when the reason begins with it); null for none. */
export function stopNote(t: Pick<SweepTrial, 'stopCode' | 'stopReason'>): string | null {
  const code = typeof t.stopCode === 'string' ? t.stopCode.trim() : '';
  const reason = typeof t.stopReason === 'string' ? t.stopReason.trim() : '';
  if (!code || reason.startsWith(code)) return reason || code || null;
  return reason ? `${code}: ${reason}` : code;
}

/** A trial whose curves may still grow: training, or waiting at an asha rung to be promoted. */
export function isOpen(status: TrialStatus): boolean {
  return status === 'Active' || status === 'Waiting';
}

/**
 * Which trials' curves to draw, by index: the first `cap` of the ranked trials that have a job (the best, then those
 * with no value yet, by index), and every active trial besides; `leftOut` counts the trials with a job not drawn.
 */
export function trialsToDraw(ranked: readonly SweepTrial[], cap: number): { shown: SweepTrial[]; leftOut: number } {
  const withJob = ranked.filter((t) => typeof t.jobId === 'string' && t.jobId !== '');
  const shown = new Map<number, SweepTrial>();
  for (const t of withJob.slice(0, Math.max(0, cap))) shown.set(t.index, t);
  for (const t of withJob) if (isOpen(t.status)) shown.set(t.index, t);
  return { shown: [...shown.values()].sort((a, b) => a.index - b.index), leftOut: withJob.length - shown.size };
}
