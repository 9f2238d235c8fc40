import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatMetric, formatParam, isOpen, shortPath, stopNote, trialColor, trialsToDraw } from './sweeps';
import type { SweepTrial } from './types';

const trial = (index: number, status: SweepTrial['status'], value: number | null, jobId: string | null = `job-${index}`): SweepTrial =>
  ({ index, jobId, status, params: {}, value, epoch: 0, step: 0 });

test('the best trials are drawn up to the cap, every active one besides, and the rest counted', () => {
  // Ranked as the leaderboard gives them: by value, then the trials without one by index.
  const ranked = [trial(4, 'Completed', 0.9), trial(2, 'Stopped', 0.8), trial(0, 'Completed', 0.7), trial(1, 'Active', 0.6),
    trial(3, 'Active', null), trial(5, 'Pending', null, null), trial(6, 'Diverged', null)];
  const { shown, leftOut } = trialsToDraw(ranked, 2);
  assert.deepEqual(shown.map((t) => t.index), [1, 2, 3, 4]); // the best two, the two active, by index
  assert.equal(leftOut, 2); // trials 0 and 6; trial 5 has no job yet
  assert.deepEqual(trialsToDraw(ranked, 20).shown.map((t) => t.index), [0, 1, 2, 3, 4, 6]);
  assert.equal(trialsToDraw(ranked, 20).leftOut, 0);
  assert.deepEqual(trialsToDraw([], 20), { shown: [], leftOut: 0 });
});

test('a trial waiting at an asha rung is drawn and followed like an active one: it may train on', () => {
  const ranked = [trial(0, 'Completed', 0.9), trial(1, 'Stopped', 0.8), trial(2, 'Waiting', 0.7), trial(3, 'Cancelled', 0.6)];
  assert.deepEqual(trialsToDraw(ranked, 1).shown.map((t) => t.index), [0, 2]);
  assert.equal(trialsToDraw(ranked, 1).leftOut, 2);
  assert.deepEqual((['Pending', 'Active', 'Waiting', 'Completed', 'Stopped', 'Diverged', 'Failed', 'Cancelled'] as const).filter(isOpen), ['Active', 'Waiting']);
});

test('a trial keeps its colour by index; twenty trials get twenty colours', () => {
  assert.equal(new Set(Array.from({ length: 20 }, (_, i) => trialColor(i))).size, 20);
  assert.equal(trialColor(3), trialColor(23));
  assert.equal(typeof trialColor(-1), 'string');
});

test('a stop reads as its code and its reason; a trial that did not stop early has none', () => {
  assert.equal(stopNote({ stopCode: 'diverged', stopReason: 'The loss became NaN at step 3.' }), 'diverged: The loss became NaN at step 3.');
  assert.equal(stopNote({ stopCode: 'diverged', stopReason: 'diverged: loss-explosion at step 2' }), 'diverged: loss-explosion at step 2');
  assert.equal(stopNote({ stopCode: 'sweep-cancelled', stopReason: null }), 'sweep-cancelled');
  assert.equal(stopNote({ stopCode: null, stopReason: 'out of memory' }), 'out of memory');
  assert.equal(stopNote({ stopCode: null, stopReason: ' ' }), null);
  assert.equal(stopNote({}), null);
});

test('values read as people read them', () => {
  assert.equal(formatMetric('validationAccuracy', 0.8125), '81.3%');
  assert.equal(formatMetric('trainLoss', 0.123456), '0.1235');
  assert.equal(formatMetric('validationLoss', null), '–');
  assert.equal(formatParam(0.0123456), '0.01235');
  assert.equal(formatParam('adam'), 'adam');
  assert.equal(formatParam({ padding: 2 }), '{"padding":2}');
  assert.equal(formatParam(undefined), '–');
  assert.equal(shortPath('hyperparameters.learningRate'), 'learningRate');
  assert.equal(shortPath('layers.conv1.filters'), 'conv1.filters');
  assert.equal(shortPath('model.other'), 'model.other');
});
