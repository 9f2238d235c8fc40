import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeThinning, JobData } from './jobdata';
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

const layers = (seq: number, s: number, mean: number): StreamEvent => ({
  seq, kind: 'layers', time: t, step: s,
  layers: [{ name: 'conv1', kind: 'conv2d', mean, std: 1, min: -1, max: 1, zeroFraction: 0, histogram: [1, 1] }],
  parameters: [{ name: 'conv1.weight', norm: 2, gradNorm: 0.1, updateRatio: 1e-3 }],
});
const thinnedLayers = (seq: number, s: number): StreamEvent => ({ seq, kind: 'layers', time: t, step: s, thinned: true });

test('a thinned layers stub keeps its seq but adds no point to any layer or parameter series', () => {
  const d = new JobData();
  d.add([step(1, 10), layers(2, 10, 0.1), step(3, 20), thinnedLayers(4, 20), step(5, 30), thinnedLayers(6, 30), step(7, 40), layers(8, 40, 0.4)]);
  assert.equal(d.seq, 8);
  assert.equal(d.gaps, 0);
  const conv1 = d.layers.get('conv1')!;
  assert.deepEqual(Array.from(conv1.step.view()), [10, 40]);
  assert.deepEqual(Array.from(conv1.mean.view()), [0.1, 0.4]);
  assert.equal(conv1.histograms.length, 2);
  assert.deepEqual(Array.from(d.parameters.get('conv1.weight')!.step.view()), [10, 40]);
  assert.deepEqual(d.thinned, { count: 2, lastStep: 30 });
});

test('a history that starts thinned has no layer series until the first kept measurement', () => {
  const d = new JobData();
  d.add([thinnedLayers(1, 10), thinnedLayers(2, 20)]);
  assert.equal(d.layers.size, 0);
  assert.equal(d.parameters.size, 0);
  d.add([layers(3, 30, 0.3)]);
  assert.deepEqual(Array.from(d.layers.get('conv1')!.step.view()), [30]);
  assert.deepEqual(d.thinned, { count: 2, lastStep: 20 });
});

test('a layers event marked thinned draws nothing even if it still carries statistics', () => {
  const d = new JobData();
  d.add([{ ...layers(1, 10, 0.1), thinned: true }, layers(2, 20, 0.2)]);
  assert.deepEqual(Array.from(d.layers.get('conv1')!.step.view()), [20]);
  assert.deepEqual(Array.from(d.parameters.get('conv1.weight')!.norm.view()), [2]);
});

test('the history-thinned alert is listed like any other alert', () => {
  const d = new JobData();
  d.add([{ seq: 1, kind: 'alert', time: t, code: 'history-thinned', step: 5000, message: 'layer statistics before step 5,000 thinned to every 100th' }]);
  assert.equal(d.notices.length, 1);
  assert.equal(d.notices[0].title, 'history-thinned · step 5000');
  assert.equal(d.notices[0].text, 'layer statistics before step 5,000 thinned to every 100th');
  assert.equal(d.notices[0].severity, 'warning');
});

test('the layers panel says how many measurements were thinned, and nothing when none were', () => {
  assert.equal(describeThinning({ count: 0, lastStep: 0 }), null);
  assert.match(describeThinning({ count: 1, lastStep: 20 })!, /1 measurement up to step 20 kept no values/);
  assert.match(describeThinning({ count: 1200, lastStep: 12000 })!, /1,200 measurements up to step 12,000/);
});
