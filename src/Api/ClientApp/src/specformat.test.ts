import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatSpec } from './specformat';

test('a spec is written one layer per line and reads back as the same spec', () => {
  const spec = {
    name: 'tiny',
    input: { channels: 1, height: 28, width: 28 },
    layers: [{ kind: 'conv2d', filters: 8, kernel: [3, 5], padding: 'same' }, { kind: 'relu' }, { kind: 'linear', units: 4, name: 'out "x", y' }],
  };
  const text = formatSpec(spec);
  assert.deepEqual(JSON.parse(text), spec);
  assert.equal(text.split('\n').length, 9);
  assert.match(text, /^ {4}\{ "kind": "conv2d", "filters": 8, "kernel": \[3,5\], "padding": "same" \},$/m);
});
