import assert from 'node:assert/strict';
import { test } from 'node:test';
import { align, colorOf, limiter, parseColumns, splice } from './curves';

const columns = [
  '{"tag":"step/loss","step":[1,2],"epoch":[1,1],"value":[1.5,1.25]}',
  '{"tag":"epoch/validation_accuracy","step":[2],"epoch":[1],"value":[0.5]}',
  '{"tag":"step/learning_rate","step":[1,2],"epoch":[1,1],"value":[0.01,0.01]}',
  '{"tag":"step/loss","step":[4],"epoch":[2],"value":["NaN"]}',
  '',
].join('\n');

test('a tag\'s blocks join into one curve; a step row sits at step ÷ steps per epoch on the epoch axis', () => {
  const curves = parseColumns(columns, ['step/loss', 'epoch/validation_accuracy'], 2);
  const loss = curves.get('step/loss')!;
  assert.deepEqual([...loss.steps], [1, 2, 4]);
  assert.deepEqual([...loss.epochs], [0.5, 1, 2]);
  assert.deepEqual([...loss.values], [1.5, 1.25, NaN]); // NaN arrives as a string
  const accuracy = curves.get('epoch/validation_accuracy')!;
  assert.deepEqual([...accuracy.epochs], [1]); // an epoch row's own epoch
  assert.deepEqual([...accuracy.steps], [2]);
  assert.equal(curves.has('step/learning_rate'), false); // not asked for
});

test('a tag with no rows is an empty curve; lines that are not blocks are skipped', () => {
  const text = ['not json', '{"tag":"step/loss"}', '{"tag":"step/loss","step":[1,2],"epoch":[1],"value":[3,4]}', 'null', '[1,2]',
    '{"tag":"step/loss","step":[7],"epoch":[1],"value":[{}]}'].join('\n');
  const curves = parseColumns(text, ['step/loss', 'epoch/train_loss'], 0);
  assert.deepEqual([...curves.get('step/loss')!.steps], [7]);
  assert.ok(Number.isNaN(curves.get('step/loss')!.values[0]));
  assert.deepEqual([...curves.get('step/loss')!.epochs], [1]); // no steps per epoch: the row's own epoch
  assert.equal(curves.get('epoch/train_loss')!.values.length, 0);
  assert.equal(parseColumns('', ['step/loss'], 10).get('step/loss')!.values.length, 0);
});

test('curves align on the union of their x values, NaN where a job has no point', () => {
  const a = { steps: Float64Array.of(1, 2, 3), epochs: Float64Array.of(1, 1, 1), values: Float64Array.of(10, 20, 30) };
  const b = { steps: Float64Array.of(2, 4), epochs: Float64Array.of(1, 2), values: Float64Array.of(200, 400) };
  const { x, ys } = align([a, b], false);
  assert.deepEqual([...x], [1, 2, 3, 4]);
  assert.deepEqual([...ys[0]], [10, 20, 30, NaN]);
  assert.deepEqual([...ys[1]], [NaN, 200, NaN, 400]);
});

test('a zoom\'s detail replaces the overview\'s points in its range, and the points outside it stay', () => {
  const curve = { steps: Float64Array.of(0, 10, 20, 30, 40), epochs: Float64Array.of(0, 1, 2, 3, 4), values: Float64Array.of(5, 4, 3, 2, 1) };
  const detail = { steps: Float64Array.of(10, 11, 12, 29), epochs: Float64Array.of(1, 1.1, 1.2, 2.9), values: Float64Array.of(4, 9, 3.5, 2.5) };
  const out = splice(curve, detail, 10, 30);
  assert.deepEqual([...out.steps], [0, 10, 11, 12, 29, 40]); // 10, 20 and 30 were the overview's: 30 had no row in the detail
  assert.deepEqual([...out.values], [5, 4, 9, 3.5, 2.5, 1]);
  assert.deepEqual([...out.epochs], [0, 1, 1.1, 1.2, 2.9, 4]);
  const empty = { steps: new Float64Array(), epochs: new Float64Array(), values: new Float64Array() };
  assert.deepEqual([...splice(curve, empty, 100, 200).steps], [0, 10, 20, 30, 40]); // a range past the end changes nothing
  assert.deepEqual([...splice(curve, empty, 0, 40).steps], []); // nothing in the range, nothing left
});

test('twenty jobs get twenty different colours', () => {
  assert.equal(new Set(Array.from({ length: 20 }, (_, i) => colorOf(i))).size, 20);
});

test('a limiter runs at most its limit at once, the rest in the order they came, and frees a place when a task fails', async () => {
  const gate = limiter(2);
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const releases: (() => void)[] = [];
  const tasks = Array.from({ length: 5 }, (_, i) => gate(async () => {
    started.push(i);
    most = Math.max(most, ++running);
    await new Promise<void>((resolve) => releases.push(resolve));
    running--;
    if (i === 1) throw new Error('failed');
    return i;
  }));
  const settled = Promise.allSettled(tasks);
  for (let n = 0; n < 5; n++) {
    await new Promise((r) => setTimeout(r, 0));
    releases.shift()!();
  }
  const results = await settled;
  assert.equal(most, 2);
  assert.deepEqual(started, [0, 1, 2, 3, 4]);
  assert.deepEqual(results.map((r) => (r.status === 'fulfilled' ? r.value : 'failed')), [0, 'failed', 2, 3, 4]);
  assert.equal(await gate(async () => 'free again'), 'free again');
});
