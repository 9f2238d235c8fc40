import { Column } from './series';
import { num, type LayerStats, type RunState, type StreamEvent } from './types';

/** One layer's output statistics over the steps they were measured on. */
export class LayerSeries {
  readonly step = new Column(256);
  readonly mean = new Column(256);
  readonly std = new Column(256);
  readonly zeroFraction = new Column(256);
  readonly min = new Column(256);
  readonly max = new Column(256);
  readonly histograms: number[][] = [];

  constructor(readonly name: string, readonly kind: string) {}

  add(step: number, s: LayerStats) {
    this.step.push(step);
    this.mean.push(num(s.mean));
    this.std.push(num(s.std));
    this.zeroFraction.push(num(s.zeroFraction));
    this.min.push(num(s.min));
    this.max.push(num(s.max));
    this.histograms.push(s.histogram);
  }
}

/** One parameter tensor's statistics over the steps they were measured on. */
export class ParameterSeries {
  readonly step = new Column(256);
  readonly norm = new Column(256);
  readonly gradNorm = new Column(256);
  readonly updateRatio = new Column(256);

  constructor(readonly name: string) {}
}

export interface Notice {
  seq: number;
  time: string;
  severity: string;
  title: string;
  text: string;
}

/**
 * Everything a job has said, in columns: every event is kept (charts decimate when they draw, never this).
 * Events must arrive in seq order with no gap (JobFollower guarantees it).
 */
export class JobData {
  seq = 0;
  state?: RunState;
  readonly steps = { step: new Column(), loss: new Column(), learningRate: new Column(), samplesPerSecond: new Column(), epoch: new Column(), time: new Column() };
  readonly epochs = { epoch: new Column(64), trainLoss: new Column(64), trainAccuracy: new Column(64), validationLoss: new Column(64), validationAccuracy: new Column(64) };
  readonly layers = new Map<string, LayerSeries>();
  readonly parameters = new Map<string, ParameterSeries>();
  readonly notices: Notice[] = [];
  /** Steps after which a person changed the hyperparameters (drawn as markers on the step charts). */
  readonly changes: number[] = [];
  /** A sanity check's verdict, once it has one. */
  sanity?: { passed: boolean; message: string; suggested: number | null };
  /** Seqs that did not follow their predecessor by exactly 1; stays 0 unless the stream breaks its promise. */
  gaps = 0;
  /** Steps whose number repeated or went backwards (a resumed job re-running steps after its checkpoint). */
  repeatedSteps = 0;
  /** Layer-statistics events the service thinned: stubs that keep their seq and step but no statistics. */
  readonly thinned = { count: 0, lastStep: 0 };

  add(events: StreamEvent[]) {
    for (const e of events) {
      if (e.seq !== this.seq + 1) this.gaps++;
      this.seq = e.seq;
      switch (e.kind) {
        case 'step': {
          const s = this.steps;
          if (s.step.length > 0 && e.step! <= s.step.last) this.repeatedSteps++;
          s.step.push(e.step!);
          s.loss.push(num(e.loss));
          s.learningRate.push(num(e.learningRate));
          s.samplesPerSecond.push(num(e.samplesPerSecond));
          s.epoch.push(e.epoch ?? NaN);
          s.time.push(Date.parse(e.time));
          break;
        }
        case 'layers':
          if (e.thinned) {
            // No statistics, so no point on any series (not a zero, not a repeat of the neighbours).
            this.thinned.count++;
            this.thinned.lastStep = Math.max(this.thinned.lastStep, e.step ?? 0);
            break;
          }
          for (const l of e.layers ?? []) {
            let series = this.layers.get(l.name);
            if (!series) this.layers.set(l.name, (series = new LayerSeries(l.name, l.kind)));
            series.add(e.step!, l);
          }
          for (const p of e.parameters ?? []) {
            let series = this.parameters.get(p.name);
            if (!series) this.parameters.set(p.name, (series = new ParameterSeries(p.name)));
            series.step.push(e.step!);
            series.norm.push(num(p.norm));
            series.gradNorm.push(num(p.gradNorm));
            series.updateRatio.push(num(p.updateRatio));
          }
          break;
        case 'epoch': {
          const p = this.epochs;
          p.epoch.push(e.epoch!);
          p.trainLoss.push(num(e.trainLoss));
          p.trainAccuracy.push(num(e.trainAccuracy));
          p.validationLoss.push(num(e.validationLoss));
          p.validationAccuracy.push(num(e.validationAccuracy));
          break;
        }
        case 'state':
          this.state = e.state;
          if (e.state === 'Failed' || e.reason) {
            this.notices.push({ seq: e.seq, time: e.time, severity: e.state === 'Failed' ? 'error' : 'info', title: e.state!, text: e.reason ?? '' });
          }
          break;
        case 'hyperparameters':
          this.changes.push(e.step ?? 0);
          this.notices.push({
            seq: e.seq,
            time: e.time,
            severity: 'info',
            title: `hyperparameters · after step ${e.step}`,
            text: `learning rate ${num(e.learningRate)}, momentum ${num(e.momentum)}, weight decay ${num(e.weightDecay)}${e.reason ? ` — “${e.reason}”` : ''}`,
          });
          break;
        case 'sanity':
          this.sanity = { passed: e.passed ?? false, message: e.message ?? '', suggested: e.suggestedLearningRate ?? null };
          this.notices.push({
            seq: e.seq,
            time: e.time,
            severity: e.passed ? 'info' : 'warning',
            title: `${e.check} ${e.passed ? 'passed' : 'failed'}`,
            text: e.message ?? '',
          });
          break;
        case 'alert':
          this.notices.push({
            seq: e.seq,
            time: e.time,
            severity: e.severity ?? 'warning',
            title: `${e.code ?? 'alert'}${e.layer ? ` · ${e.layer}` : ''}${e.step ? ` · step ${e.step}` : ''}`,
            text: [e.message, e.suggestion].filter(Boolean).join(' — '),
          });
          break;
        default:
          // A kind this dashboard does not know yet: kept in seq order, not drawn.
          break;
      }
    }
  }
}

/** What the layers panel says about thinned statistics, or null when none were thinned. */
export function describeThinning(thinned: JobData['thinned']): string | null {
  if (thinned.count === 0) return null;
  const n = thinned.count === 1 ? '1 measurement' : `${thinned.count.toLocaleString('en-US')} measurements`;
  return `The service thinned old layer statistics: ${n} up to step ${thinned.lastStep.toLocaleString('en-US')} kept no values, `
    + 'so the charts and strips below skip them.';
}
