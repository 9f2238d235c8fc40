import { authFetch, problemOf } from './auth';
import { probe } from './probe';
import type {
  ApiKeyView, CreatedKey, DatasetView, JobComparison, JobSummary, JobView, ModelPreset, ModelSpec, ModelSummary, Page, Problem, RunState, ShareCreated, ShareView,
  StreamEvent, SweepLeaderboard, SweepSummary, SweepView, ValidationResult,
} from './types';

/** A failed request, carrying the server's problem details. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly problem: Problem) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
  }

  /** Every message, prefixed by the field it names. */
  describe(): string[] {
    const lines = Object.entries(this.problem.errors ?? {}).flatMap(([field, messages]) => messages.map((m) => `${field}: ${m}`));
    return lines.length > 0 ? lines : [this.message];
  }
}

async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const response = await authFetch(path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  const text = await response.text();
  const t = performance.now();
  const result = (text ? JSON.parse(text) : undefined) as T;
  probe.timings.parseMs += performance.now() - t;
  return result;
}

export const api = {
  jobs: (state?: RunState | '', limit = 100) => request<Page<JobSummary>>('GET', `jobs?limit=${limit}${state ? `&state=${state}` : ''}`),
  job: (id: string) => request<JobView>('GET', `jobs/${id}`),
  compare: (ids: string[]) => request<JobComparison>('GET', `jobs/compare?ids=${ids.join(',')}`),
  /** A job's values of some tags as history columns: JSON Lines of { tag, step: [], epoch: [], value: [] } (curves.ts reads them). */
  /** A job's history as columns; `range` asks for a range of steps and at most about `points` rows per tag (downsampled). */
  historyColumns: async (id: string, tags: readonly string[], signal?: AbortSignal, range: { fromStep?: number; toStep?: number; points?: number } = {}) => {
    const extra = Object.entries(range).filter(([, v]) => v !== undefined).map(([k, v]) => `&${k}=${Math.round(v)}`).join('');
    const response = await authFetch(`jobs/${id}/history?format=columns&tags=${encodeURIComponent(tags.join(','))}${extra}`, { signal });
    if (!response.ok) throw new ApiError(response.status, await problemOf(response));
    return response.text();
  },
  createJob: (body: unknown) => request<JobView>('POST', 'jobs', body),
  sweeps: (limit = 100) => request<Page<SweepSummary>>('GET', `sweeps?limit=${limit}`),
  sweep: (id: string, signal?: AbortSignal) => request<SweepView>('GET', `sweeps/${encodeURIComponent(id)}`, undefined, signal),
  leaderboard: (id: string, signal?: AbortSignal) => request<SweepLeaderboard>('GET', `sweeps/${encodeURIComponent(id)}/leaderboard`, undefined, signal),
  cancelSweep: (id: string) => request<SweepView>('POST', `sweeps/${encodeURIComponent(id)}/cancel`),
  /** The best trial's model spec (or a given trial's) saved as a model. */
  saveBestModel: (id: string, name: string, trial?: number) =>
    request<ModelSummary>('POST', `sweeps/${encodeURIComponent(id)}/best/model`, { name, trial }),
  control: (id: string, action: 'pause' | 'resume' | 'cancel' | 'finish') => request<JobView>('POST', `jobs/${id}/${action}`),
  steer: (id: string, change: { learningRate?: number; momentum?: number; weightDecay?: number; reason?: string }) =>
    request<JobView>('PATCH', `jobs/${id}/hyperparameters`, change),
  events: (id: string, afterSeq: number, limit: number, signal?: AbortSignal) =>
    request<StreamEvent[]>('GET', `jobs/${id}/events?afterSeq=${afterSeq}&limit=${limit}`, undefined, signal),
  visuals: (id: string) =>
    request<{ step: number; epoch: number; probes: number; layers: { name: string; filters: number; channels: number; kernel: number[]; mapSize: number[] }[] }>('GET', `jobs/${id}/visuals`),
  snapshot: (id: string) => request<void>('POST', `jobs/${id}/snapshot`),
  datasets: () => request<DatasetView[]>('GET', 'datasets'),
  dataset: (id: string) => request<DatasetView>('GET', `datasets/${id}`),
  builtinDataset: (body: unknown) => request<DatasetView>('POST', 'datasets/builtin', body),
  samplePng: (id: string, index: number) => `datasets/${id}/samples/${index}.png`,
  shares: (jobId: string) => request<ShareView[]>('GET', `jobs/${jobId}/shares`),
  createShare: (jobId: string, expiresInHours: number) => request<ShareCreated>('POST', `jobs/${jobId}/shares`, { expiresInHours }),
  revokeShare: (jobId: string, shareId: string) => request<void>('DELETE', `jobs/${jobId}/shares/${shareId}`),
  keys: () => request<ApiKeyView[]>('GET', 'keys'),
  createKey: (name: string) => request<CreatedKey>('POST', 'keys', { name }),
  revokeKey: (id: string) => request<void>('DELETE', `keys/${id}`),
  presets: (channels: number, height: number, width: number, classes: number) =>
    request<ModelPreset[]>('GET', `models/presets?channels=${channels}&height=${height}&width=${width}&classes=${classes}`),
  models: (limit = 12) => request<Page<ModelSummary>>('GET', `models?limit=${limit}`),
  model: (id: string) => request<ModelSummary & { spec: ModelSpec }>('GET', `models/${id}`),
  validate: (spec: unknown, signal?: AbortSignal) => request<ValidationResult>('POST', 'models/validate', spec, signal),
};

/**
 * A job's history from seq 1 to upTo, fetched in pages of 10,000 in parallel (seqs have no gaps, so page bounds are
 * known up front) and handed over in seq order as each page in order arrives.
 */
export async function loadHistory(id: string, afterSeq: number, upTo: number, onPage: (events: StreamEvent[]) => void, signal?: AbortSignal) {
  const page = 10_000;
  const starts: number[] = [];
  for (let s = afterSeq; s < upTo; s += page) starts.push(s);
  const pending = starts.map((s) => api.events(id, s, Math.min(page, upTo - s), signal));
  for (const p of pending) {
    const events = await p;
    const t = performance.now();
    onPage(events);
    probe.timings.handleMs += performance.now() - t;
  }
  probe.timings.historyMs = performance.now();
}
