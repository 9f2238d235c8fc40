// The shapes of the public REST API and the SignalR stream, as the server writes them (camelCase JSON).

export type RunState = 'Queued' | 'Running' | 'Paused' | 'Succeeded' | 'Failed' | 'Cancelled';
export const runStates: RunState[] = ['Queued', 'Running', 'Paused', 'Succeeded', 'Failed', 'Cancelled'];
export const finished = (s: RunState) => s === 'Succeeded' || s === 'Failed' || s === 'Cancelled';

/** A number as the stream writes it: NaN and ±Infinity arrive as strings. */
export type Num = number | 'NaN' | 'Infinity' | '-Infinity';
export const num = (v: Num | undefined | null): number => (v === undefined || v === null ? NaN : typeof v === 'string' ? Number(v) : v);

export interface Hyperparameters {
  epochs: number;
  batchSize: number;
  optimizer: 'sgd' | 'adam' | 'adamw';
  learningRate: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  schedule: 'constant' | 'step' | 'cosine';
  stepSize: number;
  gamma: number;
  seed: number;
  validationFraction?: number | null;
  augmentation?: Augmentation | null;
}

/** Training-image augmentation (hyperparameters.augmentation); a part that is null or false is off. */
export interface Augmentation {
  randomCrop?: { padding: number } | null;
  horizontalFlip: boolean;
  translate?: number | null;
}

export interface ModelSpec {
  name?: string | null;
  input?: { channels: number; height: number; width: number } | null;
  layers?: Record<string, unknown>[] | null;
}

/** One page of a listing, newest first; `next` is the `after` of the next page, null on the last. */
export interface Page<T> {
  items: T[];
  next?: string | null;
}

/** A job as GET /jobs lists it: no spec or settings. */
export interface JobSummary {
  id: string;
  state: RunState;
  datasetId: string;
  modelId?: string | null;
  modelName?: string | null;
  progress: number;
  step: number;
  totalSteps: number;
  epoch: number;
  etaSeconds?: number | null;
  latestLoss?: number | null;
  bestValidationAccuracy?: number | null;
  samplesPerSecond?: number | null;
  lastSeq: number;
  /** Bytes of event history stored; kept under the server's per-job limit by thinning old layer statistics. */
  historyBytes: number;
  error?: string | null;
  createdAt: string;
  startedAt?: string | null;
  finishedAt?: string | null;
  /** The sweep whose trial it is, and which trial. */
  sweepId?: string | null;
  sweepTrial?: number | null;
  /** Why it stopped before its end, when something other than a person stopped it (asha-cut, diverged, sweep-cancelled). */
  stopCode?: string | null;
}

/** GET /jobs/compare: the jobs' views and the settings in which they differ, each with every job's value. */
export interface JobComparison {
  jobs: JobView[];
  differences: { path: string; values: unknown[] }[];
}

export interface JobView extends JobSummary {
  model: ModelSpec;
  hyperparameters: Hyperparameters;
  monitoring: { statsEvery: number };
  sanity?: { check: 'overfitSubset' | 'learningRateRangeTest'; samples: number; maxSteps: number; minLearningRate: number; maxLearningRate: number; steps: number } | null;
  /** The node whose worker holds the job now; null when none does. */
  worker?: string | null;
  /** Claims so far: 1 for a run never interrupted, paused or handed back. */
  attempt: number;
}

/** A saved model as GET /models lists it; GET /models/{id} adds its spec. */
export interface ModelSummary {
  id: string;
  name: string;
  parameters: number;
  createdAt: string;
}

export interface DatasetView {
  id: string;
  name: string;
  source: string;
  classes: number;
  trainCount: number;
  testCount: number;
  shape: number[];
  classCounts: number[];
  classNames?: string[] | null;
  createdAt: string;
}

export interface LayerReport {
  index: number;
  name: string;
  kind: string;
  outputShape: number[];
  parameters: number;
  multiplyAdds: number;
  receptiveField?: number[] | null;
  jump?: number[] | null;
  activationBytes: number;
  /** The layers it takes ("input" for the image). */
  inputs?: string[];
}

export interface SpecIssue {
  layerIndex?: number | null;
  layerName?: string | null;
  field: string;
  message: string;
}

export interface ValidationResult {
  valid: boolean;
  outputShape?: number[] | null;
  totalParameters: number;
  totalMultiplyAdds: number;
  totalActivationBytes: number;
  layers: LayerReport[];
  warnings: SpecIssue[];
  errors: SpecIssue[];
}

export interface ModelPreset {
  name: string;
  description: string;
  spec: ModelSpec;
}

export interface LayerStats {
  name: string;
  kind: string;
  mean: Num;
  std: Num;
  min: Num;
  max: Num;
  zeroFraction: Num;
  histogram: number[];
}

export interface ParameterStats {
  name: string;
  norm: Num;
  gradNorm: Num;
  updateRatio: Num;
}

/** One event of a job; kind says which fields are set (step, layers, epoch, state, alert). */
export interface StreamEvent {
  seq: number;
  kind: string;
  time: string;
  epoch?: number;
  step?: number;
  loss?: Num;
  learningRate?: Num;
  samplesPerSecond?: Num;
  layers?: LayerStats[];
  parameters?: ParameterStats[];
  /** layers, as stored: its statistics were dropped to keep the job's history under its limit (no layers, no parameters). */
  thinned?: boolean;
  trainLoss?: Num;
  trainAccuracy?: Num;
  validationLoss?: Num | null;
  validationAccuracy?: Num | null;
  state?: RunState;
  /** state: the run that wrote it (1, 2, …: each claim by a worker adds one). */
  attempt?: number;
  reason?: string | null;
  momentum?: Num;
  weightDecay?: Num;
  // sanity events
  check?: string;
  passed?: boolean;
  suggestedLearningRate?: number | null;
  // alert events (diagnostics)
  code?: string;
  severity?: string;
  layer?: string | null;
  message?: string;
  suggestion?: string | null;
}

/** RFC 7807 problem details, with validation errors keyed by field when the server names them. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  field?: string;
  errors?: Record<string, string[]>;
}

/** GET /me: who the request's credential signs in as; authMode "open" needs no token (loopback only). */
export interface Me {
  id: string;
  name: string;
  role: 'admin' | 'user' | 'viewer';
  key?: { id: string; name: string } | null;
  /** The job a share token opens, for a share token. */
  sharedJob?: string | null;
  authMode: 'keys' | 'open';
}

/**
 * A job's share link as GET /jobs/{id}/shares lists it: only links that have not expired or been revoked (a revoked
 * link's record is deleted); its token is only in the answer that created it.
 */
export interface ShareView {
  id: string;
  jobId: string;
  createdAt: string;
  expiresAt: string;
}

/** POST /jobs/{id}/shares: the link, with its token, shown this once. */
export interface ShareCreated extends ShareView {
  token: string;
  url: string;
}

/** An API key as GET /keys lists it: never the key, only its first characters (prefix). */
export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  userId: string;
  createdAt: string;
  lastUsedAt?: string | null;
  revokedAt?: string | null;
}

/** POST /keys: the new key, whose secret is in this answer only. */
export interface CreatedKey {
  id: string;
  name: string;
  prefix: string;
  userId: string;
  createdAt: string;
  secret: string;
}

// --- sweeps (POST/GET /sweeps): enums as the server writes them -------------------------------------------------------

export type TrialStatus = 'Pending' | 'Active' | 'Waiting' | 'Completed' | 'Stopped' | 'Diverged' | 'Failed' | 'Cancelled';
export const trialStatuses: TrialStatus[] = ['Pending', 'Active', 'Waiting', 'Completed', 'Stopped', 'Diverged', 'Failed', 'Cancelled'];
export type SweepMetricName = 'validationAccuracy' | 'validationLoss' | 'trainAccuracy' | 'trainLoss';
export type MetricGoal = 'maximize' | 'minimize';

/** A range to draw from; points: a grid's evenly spaced values, both ends included. */
export interface SearchRange {
  min?: number | null;
  max?: number | null;
  points?: number | null;
}

/** One setting a sweep varies: its path and exactly one of choice, uniform, logUniform, intUniform. */
export interface SearchDimension {
  path: string;
  choice?: unknown[] | null;
  uniform?: SearchRange | null;
  logUniform?: SearchRange | null;
  intUniform?: SearchRange | null;
}

/** One trial: its settings by search-space path, and where its job stands. */
export interface SweepTrial {
  index: number;
  jobId?: string | null;
  status: TrialStatus;
  params: Record<string, unknown>;
  /** Its best full-epoch value of the metric, and that epoch. */
  value?: number | null;
  valueEpoch?: number | null;
  epoch: number;
  step: number;
  stopCode?: string | null;
  stopReason?: string | null;
}

/** A sweep as GET /sweeps lists it. */
export interface SweepSummary {
  id: string;
  name?: string | null;
  /** Running, Succeeded (every trial ended and one has a value), Failed or Cancelled. */
  state: RunState;
  strategy: 'grid' | 'random' | 'asha';
  metric: SweepMetricName;
  goal: MetricGoal;
  trials: number;
  parallelism: number;
  counts: Partial<Record<TrialStatus, number>>;
  best?: { index: number; jobId?: string | null; value: number; params: Record<string, unknown> } | null;
  steps: number;
  /** Why no trial starts now (the owner's quota), or why the sweep failed. */
  waiting?: string | null;
  error?: string | null;
  createdAt: string;
  finishedAt?: string | null;
}

/** GET /sweeps/{id}: the summary, the settings as accepted, and every trial. */
export interface SweepView extends SweepSummary {
  /** When its learning rate comes from a range test: that test's job (not a trial) and what it suggested. */
  rangeTestJobId?: string | null;
  suggestedLearningRate?: number | null;
  settings: {
    name?: string | null;
    datasetId: string;
    modelId?: string | null;
    model: ModelSpec;
    hyperparameters: Hyperparameters;
    searchSpace: SearchDimension[];
    strategy: 'grid' | 'random' | 'asha';
    trials: number;
    parallelism: number;
    seed: number;
    metric: SweepMetricName;
    goal: MetricGoal;
    rungs?: number[] | null;
  };
  trialList: SweepTrial[];
}

/** GET /sweeps/{id}/leaderboard: the trials best first (those with no value last, by index), with asha's rung reports. */
export interface SweepLeaderboard {
  metric: SweepMetricName;
  goal: MetricGoal;
  ranked: { rank: number; trial: SweepTrial; rungs: RungReport[] }[];
}

/**
 * A trial's value at an asha rung and the decision: continued (went on, or was promoted), waiting (promotion form: for
 * promotion), or neither (stopped, cut); the cut it was compared with (null: the first to report there, or still waiting).
 */
export interface RungReport {
  epoch: number;
  value: number;
  cutoff?: number | null;
  continued: boolean;
  earlier: number;
  waiting?: boolean;
}
