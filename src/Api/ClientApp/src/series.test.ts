import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Column, decimate, lowerBound, smooth } from './series';

const range = (n: number) => Float64Array.from({ length: n }, (_, i) => i + 1);

test('a column grows past its capacity and keeps every value', () => {
  const c = new Column(2);
  for (let i = 0; i < 1000; i++) c.push(i * 0.5);
  assert.equal(c.length, 1000);
  assert.equal(c.get(999), 499.5);
  assert.equal(c.last, 499.5);
  assert.deepEqual(Array.from(c.view().subarray(0, 3)), [0, 0.5, 1]);
});

test('smoothing with weight 0 is the identity; the first smoothed value is the first value (debiased)', () => {
  const v = Float64Array.from([3, 1, 4, 1, 5]);
  assert.deepEqual(Array.from(smooth(v, 0)), [3, 1, 4, 1, 5]);
  const s = smooth(v, 0.9);
  assert.equal(s[0], 3);
  // Second value by hand: last = 0.9*(0.1*3) + 0.1*1 = 0.37; debiased by 1 - 0.9^2 = 0.19.
  assert.ok(Math.abs(s[1] - 0.37 / 0.19) < 1e-12);
});

test('smoothing skips NaN and carries the smoothed value over it', () => {
  const s = smooth(Float64Array.from([NaN, 2, NaN, 2]), 0.5);
  assert.ok(Number.isNaN(s[0]));
  assert.equal(s[1], 2);
  assert.equal(s[2], 2);
  assert.equal(s[3], 2);
});

test('few points are returned as they are', () => {
  const x = range(50);
  const [dx, dy] = decimate(x, [x.map((v) => v * 2)], 1, 50, 100);
  assert.deepEqual(Array.from(dx), Array.from(x));
  assert.equal(dy[49], 100);
});

test('100,000 points become a few per bucket, and a single spike survives', () => {
  const n = 100_000;
  const x = range(n);
  const y = x.map((v) => 1 / Math.sqrt(v));
  y[54_321] = 1000; // one exploding step
  y[77_777] = -5;
  const [dx, dy] = decimate(x, [y], 1, n, 500);
  assert.ok(dx.length <= 500 * 4 + 2, `${dx.length} points`);
  assert.ok(dx.length >= 500, `${dx.length} points`);
  assert.ok(dy.includes(1000));
  assert.ok(dy.includes(-5));
  assert.equal(dx[0], 1);
  assert.equal(dx[dx.length - 1], n);
  for (let i = 1; i < dx.length; i++) assert.ok(dx[i] > dx[i - 1], 'x stays ascending');
});

test('a zoomed range is decimated from its own points, with one neighbour beyond each edge', () => {
  const n = 100_000;
  const x = range(n);
  const [dx] = decimate(x, [x], 40_000, 40_100, 500);
  assert.equal(dx[0], 39_999);
  assert.equal(dx[dx.length - 1], 40_101);
  assert.equal(dx.length, 103);
});

test('lowerBound finds the first index not below the value', () => {
  const x = Float64Array.from([1, 2, 2, 5]);
  assert.equal(lowerBound(x, 0), 0);
  assert.equal(lowerBound(x, 2), 1);
  assert.equal(lowerBound(x, 3), 3);
  assert.equal(lowerBound(x, 9), 4);
});
