import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dimensionAxis, goodness, niceTicks, ramp, valueAxis } from './parallel';

test('a choice is a categorical axis: its values evenly spaced in the order given, anything else unplaced', () => {
  const axis = dimensionAxis({ path: 'hyperparameters.optimizer', choice: ['sgd', 'adam', 'adamw'] }, []);
  assert.equal(axis.kind, 'category');
  assert.equal(axis.label, 'optimizer');
  assert.deepEqual(['sgd', 'adam', 'adamw'].map(axis.place), [0, 0.5, 1]);
  assert.equal(axis.place('lion'), null);
  assert.equal(axis.place(undefined), null);
  assert.deepEqual(axis.ticks.map((t) => t.label), ['sgd', 'adam', 'adamw']);
  // Numbers and objects match by value; a single choice sits in the middle.
  assert.equal(dimensionAxis({ path: 'layers.conv1.filters', choice: [4, 8] }, []).place(8), 1);
  assert.equal(dimensionAxis({ path: 'x', choice: [{ translate: 2 }] }, []).place({ translate: 2 }), 0.5);
});

test('logUniform is a logarithmic axis over its range, ticked at the decades', () => {
  const axis = dimensionAxis({ path: 'hyperparameters.learningRate', logUniform: { min: 1e-4, max: 1e-1 } }, []);
  assert.equal(axis.kind, 'log');
  assert.ok(Math.abs(axis.place(1e-3)! - 1 / 3) < 1e-12);
  assert.ok(Math.abs(axis.place(1e-2)! - 2 / 3) < 1e-12);
  assert.equal(axis.place(1e-4), 0);
  assert.equal(axis.place(0), null); // not on a log axis
  assert.equal(axis.place('0.01'), null); // not a number
  assert.deepEqual(axis.ticks.map((t) => t.label), ['1e-4', '1e-3', '0.01', '0.1']);
  // A range within one decade is ticked at its ends.
  assert.deepEqual(dimensionAxis({ path: 'p', logUniform: { min: 0.02, max: 0.05 } }, []).ticks.map((t) => t.at), [0, 1]);
});

test('uniform and intUniform are linear over their range; values outside it sit at its ends', () => {
  const axis = dimensionAxis({ path: 'hyperparameters.momentum', uniform: { min: 0.5, max: 0.9 } }, []);
  assert.equal(axis.kind, 'linear');
  assert.ok(Math.abs(axis.place(0.7)! - 0.5) < 1e-12);
  assert.equal(axis.place(2), 1);
  assert.equal(axis.place(null), null);
  const filters = dimensionAxis({ path: 'layers.conv1.filters', intUniform: { min: 2, max: 10 } }, []);
  assert.equal(filters.place(6), 0.5);
  assert.deepEqual(filters.ticks.map((t) => t.label), ['2', '4', '6', '8', '10']);
});

test('a range that cannot be drawn falls back to the trials\' values; a dimension of no known kind to their categories', () => {
  const bad = dimensionAxis({ path: 'p', logUniform: { min: 0, max: 1 } }, [0.01, 0.1]);
  assert.equal(bad.kind, 'log');
  assert.equal(bad.place(0.01), 0);
  assert.equal(bad.place(0.1), 1);
  const none = dimensionAxis({ path: 'p' }, [3, 'a', 3, undefined]);
  assert.equal(none.kind, 'category');
  assert.deepEqual(none.ticks.map((t) => t.label), ['3', 'a']);
});

test('the metric axis spans the values there are, higher up; one value gets room around it', () => {
  const axis = valueAxis('accuracy', 'validationAccuracy', [0.5, 0.9, null, 'NaN'], String);
  assert.equal(axis.place(0.9), 1);
  assert.equal(axis.place(0.5), 0);
  assert.equal(axis.place(null), null);
  assert.ok(Math.abs(valueAxis('loss', 'trainLoss', [2], String).place(2)! - 0.5) < 1e-12);
  assert.equal(valueAxis('loss', 'trainLoss', [], String).place(0.5), 0.5);
});

test('ticks are round numbers inside the range', () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0.53, 0.91, 4), [0.6, 0.7, 0.8, 0.9]);
  assert.deepEqual(niceTicks(1, 1, 5), []);
  assert.deepEqual(niceTicks(NaN, 1, 5), []);
});

test('colour runs from the worst value (dark) to the best (yellow) whichever way the goal points', () => {
  assert.equal(ramp(0), 'rgb(68, 1, 84)');
  assert.equal(ramp(1), 'rgb(253, 231, 37)');
  assert.equal(ramp(NaN), ramp(0));
  assert.equal(goodness(0.9, 0.5, 0.9, true), 1);
  assert.equal(goodness(0.5, 0.5, 0.9, true), 0);
  assert.equal(goodness(0.5, 0.5, 0.9, false), 1); // a loss: lower is better
  assert.equal(goodness(3, 3, 3, false), 1);
});
