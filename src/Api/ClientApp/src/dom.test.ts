import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fmt } from './dom';

test('axis ticks stay short: exponents for tiny values, k and M for large ones', () => {
  assert.deepEqual([0, 1e-5, 0.001, 0.05, 1.5, 250, 9999, 12_000, 117_000, 2_500_000].map(fmt.tick), ['0', '1e-5', '1e-3', '0.05', '1.5', '250', '10000', '12k', '117k', '2.5M']);
});
