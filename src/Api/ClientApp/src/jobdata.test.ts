import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JobData } from './jobdata';
import type { StreamEvent } from './types';

const t = '2026-11-26T12:00:00Z';
const step = (seq: number, s: number, loss: number | 'NaN' = 1): StreamEvent => ({ seq, kind: 'step', time: t, epoch: 1, step: s, loss, learningRate: 0.01, samplesPerSecond: 1000 });

test('events land in columns; NaN written as a string becomes NaN', () => {
  const d = new JobData();
  d.add([{ seq: 1, kind: 'state', time: t, state: 'Running' }, step(2, 1, 2.5), step(3, 2, 'NaN')]);
  assert.equal(d.seq, 3);
  assert.equal(d.state, 'Running');
  assert.deepEqual(Array.from(d.steps.step.view()), [1, 2]);
  assert.equal(d.steps.loss.get(0), 2.5);
  assert.ok(Number.isNaN(d.steps.loss.get(1)));
  assert.equal(d.gaps, 0);
});

test('a seq that skips or a step that repeats is counted, never hidden', () => {
  const d = new JobData();
  d.add([step(1, 1), step(3, 2), step(4, 2)]);
  assert.equal(d.gaps, 1);
  assert.equal(d.repeatedSteps, 1);
});

test('layer statistics become one series per layer and per parameter tensor', () => {
  const d = new JobData();
  d.add([
    {
      seq: 1, kind: 'layers', time: t, step: 10,
      layers: [{ name: 'conv1', kind: 'conv2d', mean: 0.1, std: 1, min: -2, max: 3, zeroFraction: 0, histogram: [1, 2, 3] },
        { name: 'relu1', kind: 'relu', mean: 0.4, std: 0.5, min: 0, max: 3, zeroFraction: 0.5, histogram: [3, 2, 1] }],
      parameters: [{ name: 'conv1.weight', norm: 2, gradNorm: 0.1, updateRatio: 1e-3 }],
    },
    { seq: 2, kind: 'epoch', time: t, epoch: 1, trainLoss: 0.5, trainAccuracy: 0.8, validationLoss: null, validationAccuracy: 0.75 },
    { seq: 3, kind: 'alert', time: t, code: 'dead-relu', severity: 'warning', layer: 'relu1', step: 10, message: 'half of relu1 never fires', suggestion: 'lower the learning rate' },
  ]);
  assert.deepEqual([...d.layers.keys()], ['conv1', 'relu1']);
  assert.equal(d.layers.get('relu1')!.zeroFraction.get(0), 0.5);
  assert.deepEqual(d.layers.get('conv1')!.histograms[0], [1, 2, 3]);
  assert.equal(d.parameters.get('conv1.weight')!.updateRatio.get(0), 1e-3);
  assert.ok(Number.isNaN(d.epochs.validationLoss.get(0)));
  assert.equal(d.epochs.validationAccuracy.get(0), 0.75);
  assert.equal(d.notices.length, 1);
  assert.match(d.notices[0].title, /dead-relu · relu1 · step 10/);
  assert.match(d.notices[0].text, /lower the learning rate/);
});
