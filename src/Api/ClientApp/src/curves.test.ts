import assert from 'node:assert/strict';
import { test } from 'node:test';
import { align, colorOf, parseCurve } from './curves';

const csv = [
  'step,epoch,time,tag,value',
  '1,1,2026-11-28T13:08:08.3946760Z,step/loss,1.5',
  '1,1,2026-11-28T13:08:08.3946760Z,step/learning_rate,0.01',
  '2,1,2026-11-28T13:08:08.4097800Z,step/loss,1.25',
  '2,1,2026-11-28T13:08:08.4097800Z,epoch/validation_accuracy,0.5',
  '4,2,2026-11-28T13:08:08.5Z,step/loss,NaN',
  '',
].join('\n');

test('a curve keeps its tag\'s rows; a step row sits at step ÷ steps per epoch on the epoch axis', () => {
  const loss = parseCurve(csv, 'step/loss', 2);
  assert.deepEqual([...loss.steps], [1, 2, 4]);
  assert.deepEqual([...loss.epochs], [0.5, 1, 2]);
  assert.deepEqual([...loss.values], [1.5, 1.25, NaN]);
  const accuracy = parseCurve(csv, 'epoch/validation_accuracy', 2);
  assert.deepEqual([...accuracy.epochs], [1]); // an epoch row's own epoch
  assert.deepEqual([...accuracy.steps], [2]);
});

test('curves align on the union of their x values, NaN where a job has no point', () => {
  const a = { steps: Float64Array.of(1, 2, 3), epochs: Float64Array.of(1, 1, 1), values: Float64Array.of(10, 20, 30) };
  const b = { steps: Float64Array.of(2, 4), epochs: Float64Array.of(1, 2), values: Float64Array.of(200, 400) };
  const { x, ys } = align([a, b], false);
  assert.deepEqual([...x], [1, 2, 3, 4]);
  assert.deepEqual([...ys[0]], [10, 20, 30, NaN]);
  assert.deepEqual([...ys[1]], [NaN, 200, NaN, 400]);
});

test('twenty jobs get twenty different colours', () => {
  assert.equal(new Set(Array.from({ length: 20 }, (_, i) => colorOf(i))).size, 20);
});
